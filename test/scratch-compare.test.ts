import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type * as TF from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadClassifier } from '../src/classifier/load.js';
import { predictImages } from '../src/classifier/predict.js';
import { summarizeTopology } from '../src/models/summary.js';
import { getTf } from '../src/runtime/tfjs.js';
import { buildArchitecture } from '../src/engine/architectures.js';
import { compareOnFolder } from '../src/train/compare.js';
import { trainFromFolder } from '../src/train/run.js';
import { parseAugment } from '../src/image/augment.js';
import { makeDataset, makeTinyBackbone, runCli, tmpDir } from './helpers.js';

let data: string;

beforeAll(async () => {
  data = await makeDataset(tmpDir(), { classes: { red: 24, green: 24, blue: 24 }, seed: 13, size: 56 });
});

describe('Keras-style summary', () => {
  it("the notebook's CNN has 1,233,473 parameters for 97 classes at 224x224, in Keras' table layout", async () => {
    const { artifacts } = await buildArchitecture('notebook-cnn', [224, 224], 97, 1);
    const s = await summarizeTopology(artifacts.modelTopology);
    expect(s.total).toBe(1233473);
    expect(s.trainable).toBe(1233473);
    const lines = s.text.split('\n');
    expect(lines[2]).toBe('Layer (type)                 Output Shape              Param #');
    expect(lines).toContain('conv2d_1 (Conv2D)            (None, 222, 222, 32)      896');
    expect(lines).toContain('dense_1 (Dense)              (None, 256)               1179904');
    expect(lines.slice(-4)).toEqual(['Total params: 1,233,473', 'Trainable params: 1,233,473', 'Non-trainable params: 0', '_'.repeat(65)]);
    expect(s.rows.map((r) => r.type).filter((t) => t === 'Conv2D')).toHaveLength(4);
  });

  it('tlearn summary prints architectures and run folders', async () => {
    const r = await runCli(['summary', 'notebook-cnn', '--classes', '97']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Total params: 1,233,473');
    const bad = await runCli(['summary', 'no-such-thing']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/is not a folder, a zoo backbone or an architecture/);
  });
});

describe('--mode scratch', () => {
  it('trains the notebook CNN from scratch; the saved model loads in tfjs and agrees with tlearn predict', async () => {
    const r = await trainFromFolder({ data, mode: 'scratch', inputSize: [48, 48], epochs: 8, batchSize: 16, lr: 0.003, seed: 1, augment: parseAugment('flip'), out: path.join(tmpDir(), 'scratch') });
    expect((r.metrics as any).augment).toEqual({ crop: 0, flip: true, rotate: 0, color: 0 });
    expect(r.metrics.mode).toBe('scratch');
    expect(r.metrics.test.accuracy).toBeGreaterThan(0.8);
    expect(r.history).toHaveLength(8);
    expect((r.metrics as any).model.params).toBe(37_859);
    const clf = await loadClassifier(r.outDir);
    expect(clf.metadata.preprocessing).toBe('unit');
    const tf: typeof TF = await getTf();
    const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: clf.artifacts!.modelTopology as any, weightSpecs: clf.artifacts!.weightSpecs as any, weightData: clf.artifacts!.weightData }));
    const img = path.join(data, 'blue', 'img_003.jpg');
    const p = await predictImages(clf, [img]);
    const { data: raw } = await sharp(img).resize(48, 48, { fit: 'fill', kernel: 'linear' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const x = tf.tensor4d(Float32Array.from(raw, (v) => v / 255), [1, 48, 48, 3]);
    const ref = (model.predict(x) as TF.Tensor).dataSync();
    p.predictions[0]!.probabilities.forEach((v, i) => expect(Math.abs(v - ref[i]!)).toBeLessThan(2e-3));
    expect(p.predictions[0]!.top[0]!.label).toBe('blue');
  });
});

describe('tlearn compare', () => {
  it('trains both on one split and writes summaries, the figure, compare.json, a report and two run folders', async () => {
    const backbone = await makeTinyBackbone(tmpDir());
    const out = path.join(tmpDir(), 'cmp');
    const r = await compareOnFolder({ data, backbone, inputSize: [48, 48], epochs: 4, batchSize: 16, lr: 0.003, seed: 2, out });
    expect(r.summaries.scratch.total).toBe(37_859);
    expect(r.summaries.transfer.trainable).toBe(16 * 3 + 3);
    expect(r.summaries.transfer.nonTrainable).toBe(r.summaries.transfer.total - 51);
    expect((await fs.readdir(out)).sort()).toEqual(expect.arrayContaining(['compare.json', 'compare.png', 'compare.svg', 'report.html', 'scratch', 'transfer', 'split.json']));
    const j = JSON.parse(await fs.readFile(path.join(out, 'compare.json'), 'utf8'));
    expect(j.scratch.history).toHaveLength(4);
    expect(j.transfer.history).toHaveLength(4);
    expect(j.scratch.test.accuracy).toBeGreaterThan(0);
    expect(j.transfer.test.n).toBe(j.scratch.test.n);
    expect(j.scratch.wallSeconds).toBeGreaterThan(0);
    expect(j.scratch.summary).toContain('Total params: 37,859');
    const svg = await fs.readFile(path.join(out, 'compare.svg'), 'utf8');
    expect(svg).toContain('Validation loss');
    expect(svg).toContain('Validation accuracy');
    const png = await sharp(path.join(out, 'compare.png')).metadata();
    expect(png.width).toBeGreaterThan(900);
    // both sides used the same split
    const s1 = JSON.parse(await fs.readFile(path.join(out, 'scratch', 'split.json'), 'utf8'));
    const s2 = JSON.parse(await fs.readFile(path.join(out, 'transfer', 'split.json'), 'utf8'));
    expect(s1.test).toEqual(s2.test);
    // both sides went through the calibration step (too few validation images here to fit a temperature)
    for (const side of [r.runs.scratch, r.runs.transfer]) expect(side.metrics.calibration).toMatchObject({ method: 'none', note: expect.stringMatching(/validation images, at least 20 are needed/) });
    const html = await fs.readFile(r.report.html, 'utf8');
    expect(html).toContain('scratch train');
    expect(html).toContain('transfer val');
  });
});
