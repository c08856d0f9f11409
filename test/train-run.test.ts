import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type * as TF from '@tensorflow/tfjs';
import { loadClassifier, ClassifierLoadError } from '../src/classifier/load.js';
import { predictImages } from '../src/classifier/predict.js';
import { getTf } from '../src/runtime/tfjs.js';
import { trainFromFolder, type TrainRunResult } from '../src/train/run.js';
import { makeDataset, makeTinyBackbone, runCli, tmpDir } from './helpers.js';

let data: string;
let backbone: string;
let run: TrainRunResult;

beforeAll(async () => {
  data = await makeDataset(tmpDir(), { classes: { red: 20, green: 20, blue: 20 }, seed: 7 });
  // every kind of bad file: text named .jpg, zero bytes, a truncated JPEG, an unsupported format (a PSD named .png)
  await fs.writeFile(path.join(data, 'red', 'broken.jpg'), 'not an image');
  await fs.writeFile(path.join(data, 'red', 'empty.jpg'), '');
  const good = await fs.readFile(path.join(data, 'blue', 'img_000.jpg'));
  await fs.writeFile(path.join(data, 'blue', 'truncated.jpg'), good.subarray(0, good.length >> 1));
  await fs.writeFile(path.join(data, 'green', 'photoshop.png'), Buffer.concat([Buffer.from('8BPS'), Buffer.alloc(64)]));
  await fs.writeFile(path.join(data, 'green', 'notes.txt'), 'skip me');
  backbone = await makeTinyBackbone(tmpDir());
  run = await trainFromFolder({ data, backbone, epochs: 15, lr: 0.01, batchSize: 8, seed: 1, out: path.join(tmpDir(), 'run') });
});

describe('trainFromFolder', () => {
  it('writes metrics.json, history.json, split.json and a self-contained model/', async () => {
    const files = (await fs.readdir(run.outDir)).sort();
    expect(files).toEqual(['class-counts.png', 'confusion.png', 'curves.png', 'history.json', 'metrics.json', 'model', 'options.json', 'reliability.png', 'report.html', 'split.json', 'test-predictions.csv']);
    expect((await fs.readdir(path.join(run.outDir, 'model'))).sort()).toEqual(['metadata.json', 'model.json', 'weights.bin']);
    const m = JSON.parse(await fs.readFile(path.join(run.outDir, 'metrics.json'), 'utf8'));
    for (const k of ['accuracy', 'loss', 'top5', 'balancedAccuracy', 'perClass', 'confusion', 'macro', 'ece']) {
      expect(m.test).toHaveProperty(k);
      expect(m.val).toHaveProperty(k);
    }
    expect(m.test.confusion).toHaveLength(3);
    expect(m.test.perClass.map((c: any) => c.name)).toEqual(['blue', 'green', 'red']);
    expect(Object.keys(m.timings)).toEqual(['discover', 'split', 'audit', 'backbone', 'features', 'train', 'evaluate', 'save', 'total']);
    expect(m.features.forwardSeconds).toBeGreaterThan(0);
    // the text, the empty file and the PSD are not images by content; the truncated JPEG is, until decoded
    expect(m.audit.formats).toEqual({ jpeg: 61 });
    expect(m.dataset.classes).toBe(3);
    expect(m.test.accuracy).toBeGreaterThan(0.9);
    const history = JSON.parse(await fs.readFile(path.join(run.outDir, 'history.json'), 'utf8'));
    expect(history).toHaveLength(15);
    expect(Object.keys(history[0])).toEqual(['epoch', 'loss', 'acc', 'val_loss', 'val_acc', 'seconds', 'lr']);
  });

  it('reports the unreadable image and the non-image file, and trains on the rest', async () => {
    const skipped = run.metrics.dataset.skippedFiles.map((s: any) => `${path.basename(s.path)}: ${s.reason}`).sort();
    expect(skipped).toEqual([
      'broken.jpg: not an image: the content is text (named .jpg)',
      'empty.jpg: empty file',
      'notes.txt: not an image file (extension .txt)',
      'photoshop.png: not an image: the content is a Photoshop (PSD) file (named .png)',
      'truncated.jpg: not a readable image (truncated JPEG: the file ends before its end-of-image marker)',
    ]);
    expect(run.metrics.dataset.skipped).toBe(5);
    const s = run.metrics.dataset.split!;
    expect(s.train + s.val + s.test).toBe(60);
  });

  it('keeps the test split untouched by training: split.json lists disjoint parts', async () => {
    const split = JSON.parse(await fs.readFile(path.join(run.outDir, 'split.json'), 'utf8'));
    const all = [...split.train, ...split.val, ...split.test].map((e: [string, number]) => e[0]);
    expect(new Set(all).size).toBe(61);
    expect(split.counts).toEqual({ train: split.train.length, val: split.val.length, test: split.test.length });
  });

  it('the model loads with tf.loadLayersModel and agrees with tlearn predict (onnxruntime) to 1e-4', async () => {
    const tf: typeof TF = await getTf();
    const clf = await loadClassifier(run.outDir);
    expect(clf.metadata.labels).toEqual(['blue', 'green', 'red']);
    const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: clf.artifacts!.modelTopology as any, weightSpecs: clf.artifacts!.weightSpecs as any, weightData: clf.artifacts!.weightData }));
    expect(model.inputs[0]!.shape).toEqual([null, 32, 32, 3]);
    const files = [path.join(data, 'red', 'img_000.jpg'), path.join(data, 'blue', 'img_001.jpg')];
    const pred = await predictImages(clf, files, { top: 3 });
    expect(pred.predictions.map((p) => p.top[0]!.label)).toEqual(['red', 'blue']);
    const { decodeImage } = await import('../src/image/decode.js');
    const { preprocess } = await import('../src/backbones/preprocess.js');
    for (const [i, f] of files.entries()) {
      const x = preprocess(await decodeImage(f, { width: 32, height: 32 }), 'tf');
      const p = (model.predict(tf.tensor4d(x, [1, 32, 32, 3])) as TF.Tensor).dataSync();
      pred.predictions[i]!.probabilities.forEach((v, k) => expect(Math.abs(v - p[k]!)).toBeLessThan(1e-4));
    }
  });

  it('a second run reads every feature from the cache and gives the same result', async () => {
    const again = await trainFromFolder({ data, backbone, epochs: 15, lr: 0.01, batchSize: 8, seed: 1, out: path.join(tmpDir(), 'run2') });
    expect(again.metrics.features.computed).toBe(0);
    expect(again.metrics.features.fromCache).toBe(60);
    expect(again.metrics.features.computed).toBe(0);
    expect(again.metrics.test.accuracy).toBe(run.metrics.test.accuracy);
    expect(again.history.map((h) => h.loss)).toEqual(run.history.map((h) => h.loss));
  });

  it('a run that fails before training leaves no folder it made behind, and keeps one that was there', async () => {
    const missing = path.join(tmpDir(), 'no-such-model');
    // a named --out that did not exist: made, then removed with the error
    const out = path.join(tmpDir(), 'never');
    await expect(trainFromFolder({ data, backbone: missing, out })).rejects.toThrow(/unknown backbone/);
    await expect(fs.stat(out)).rejects.toThrow(/ENOENT/);
    // a folder that was there stays, with what was in it
    const kept = tmpDir();
    await fs.writeFile(path.join(kept, 'notes.txt'), 'mine');
    await expect(trainFromFolder({ data, backbone: missing, out: kept })).rejects.toThrow(/unknown backbone/);
    expect(await fs.readFile(path.join(kept, 'notes.txt'), 'utf8')).toBe('mine');
    // the CLI's default runs/<time> in a fresh working folder: neither it nor runs/ is left; an existing runs/ stays
    const cwd = tmpDir();
    const r = await runCli(['train', data, '--backbone', missing], {}, cwd);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown backbone/);
    expect(await fs.readdir(cwd)).toEqual([]);
    await fs.mkdir(path.join(cwd, 'runs'));
    expect((await runCli(['train', data, '--backbone', missing], {}, cwd)).code).toBe(1);
    expect(await fs.readdir(path.join(cwd, 'runs'))).toEqual([]);
  }, 60_000);

  it('rejects a dataset too small to split', async () => {
    const tiny = await makeDataset(tmpDir(), { classes: { a: 1, b: 1 } });
    await expect(trainFromFolder({ data: tiny, backbone, out: tmpDir() })).rejects.toThrow(/split is empty/);
  });
});

describe('predictImages / loadClassifier', () => {
  it('walks folders, reports unreadable files and predicts the rest', async () => {
    const clf = await loadClassifier(path.join(run.outDir, 'model'));
    const r = await predictImages(clf, [path.join(data, 'red'), '/nonexistent.jpg'], { top: 2 });
    expect(r.predictions).toHaveLength(20);
    expect(r.predictions.every((p) => p.top.length === 2 && p.top[0]!.probability >= p.top[1]!.probability)).toBe(true);
    const reasons = r.failed.map((f) => `${path.basename(f.path)}: ${f.reason}`);
    expect(reasons).toEqual(['broken.jpg: not an image: the content is text (named .jpg)', 'empty.jpg: empty file', 'nonexistent.jpg: no such file or folder']);
  });

  it('explains what it cannot load', async () => {
    await expect(loadClassifier('/nonexistent')).rejects.toThrow(ClassifierLoadError);
    const empty = tmpDir();
    await expect(loadClassifier(empty)).rejects.toThrow(/cannot read .*model.json/);
    await expect(loadClassifier(path.join(empty, 'x.onnx'))).rejects.toThrow(/does not exist/);
  });
});
