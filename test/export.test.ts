import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as ortNode from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadClassifier } from '../src/classifier/load.js';
import { predictImages } from '../src/classifier/predict.js';
import { exportClassifier, ExportError } from '../src/export/export.js';
import { decodeModel } from '../src/onnx/proto.js';
import { trainFromFolder } from '../src/train/run.js';
import { makeDataset, makeTinyBackbone, runCli, tmpDir } from './helpers.js';

let data: string;
let runDir: string;

beforeAll(async () => {
  data = await makeDataset(tmpDir(), { classes: { red: 10, green: 10, blue: 10 }, seed: 5 });
  const backbone = await makeTinyBackbone(tmpDir());
  runDir = (await trainFromFolder({ data, backbone, epochs: 10, batchSize: 8, lr: 0.02, seed: 2, out: path.join(tmpDir(), 'run') })).outDir;
});

describe('tlearn export', () => {
  it('ONNX: one file plus metadata; predict on it matches predict on the run folder', async () => {
    const r = await exportClassifier(runDir, { format: 'onnx' });
    expect(r.files.map((f) => path.basename(f))).toEqual(['model.onnx', 'model.metadata.json']);
    const meta = JSON.parse(await fs.readFile(r.files[1]!, 'utf8'));
    expect(meta).toMatchObject({ labels: ['blue', 'green', 'red'], inputSize: [32, 32], layout: 'NHWC', preprocessing: 'tf', inputName: 'input', outputName: 'probabilities' });
    const proto = decodeModel(await fs.readFile(r.files[0]!));
    expect(proto.graph.output[0].name).toBe('probabilities');
    const props = Object.fromEntries(proto.metadata_props.map((p: any) => [p.key, p.value]));
    expect(JSON.parse(props.labels)).toEqual(['blue', 'green', 'red']);

    const images = [path.join(data, 'red'), path.join(data, 'blue')];
    const fromRun = await predictImages(await loadClassifier(runDir), images);
    const fromOnnx = await predictImages(await loadClassifier(r.files[0]!), images);
    expect(fromOnnx.predictions).toHaveLength(20);
    fromOnnx.predictions.forEach((p, i) => {
      expect(p.top[0]!.label).toBe(fromRun.predictions[i]!.top[0]!.label);
      p.probabilities.forEach((v, k) => expect(Math.abs(v - fromRun.predictions[i]!.probabilities[k]!)).toBeLessThan(1e-4));
    });
    // the metadata embedded in the .onnx is enough on its own
    const lone = path.join(tmpDir(), 'alone.onnx');
    await fs.copyFile(r.files[0]!, lone);
    expect((await loadClassifier(lone)).metadata.labels).toEqual(['blue', 'green', 'red']);
  });

  it('the exported ONNX runs in onnxruntime-web (wasm) with the same output as onnxruntime-node', async () => {
    const file = path.join(tmpDir(), 'web.onnx');
    await exportClassifier(runDir, { format: 'onnx', out: file });
    const bytes = await fs.readFile(file);
    const x = Float32Array.from({ length: 2 * 32 * 32 * 3 }, (_, i) => Math.sin(i) * 0.9);
    const web = await import('onnxruntime-web');
    web.env.wasm.numThreads = 1;
    const ws = await web.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
    const wy = (await ws.run({ input: new web.Tensor('float32', x, [2, 32, 32, 3]) })).probabilities!.data as Float32Array;
    const ns = await ortNode.InferenceSession.create(bytes);
    const ny = (await ns.run({ input: new ortNode.Tensor('float32', x, [2, 32, 32, 3]) })).probabilities!.data as Float32Array;
    expect(wy.length).toBe(6);
    wy.forEach((v, i) => expect(Math.abs(v - ny[i]!)).toBeLessThan(1e-5));
  });

  it('TF.js: a layers model folder with metadata, loadable by tlearn predict', async () => {
    const out = path.join(tmpDir(), 'tfjs');
    const r = await exportClassifier(runDir, { format: 'tfjs', out });
    expect(r.files.map((f) => path.basename(f)).sort()).toEqual(['metadata.json', 'model.json', 'weights.bin']);
    const p = await predictImages(await loadClassifier(out), [path.join(data, 'green', 'img_000.jpg')]);
    expect(p.predictions[0]!.top[0]!.label).toBe('green');
  });

  it('bad requests fail clearly', async () => {
    await expect(exportClassifier(runDir, { format: 'onnx', out: path.join(tmpDir(), 'x.bin') })).rejects.toThrow(ExportError);
    await expect(exportClassifier(runDir, { format: 'pt' as any })).rejects.toThrow(/unknown export format 'pt'/);
    await expect(exportClassifier(path.join(runDir, 'model.onnx'), { format: 'onnx' })).rejects.toThrow(/already an exported ONNX model/);
    const cli = await runCli(['export', runDir, '--format', 'caffe']);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/--format must be one of onnx, tfjs/);
  });
});
