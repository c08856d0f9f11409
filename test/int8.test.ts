/**
 * int8: the QDQ quantizer over tlearn's own ONNX graphs (a small MobileNet-like model built here: zero padding,
 * strided conv, BatchNormalization, ReLU6, depthwise conv, residual Add, global pooling), calibration and its
 * cache, what onnxruntime makes of it (integer QLinearConv/QLinearAdd kernels), int8 extraction with its own
 * features-store key, `train --int8`, `extract --int8`, `serve --int8`, `export --format onnx --int8`, bad input.
 */
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { describe, expect, it, beforeAll } from 'vitest';
import { writeLayersModel } from '../src/backbones/layers-model.js';
import { loadBackbone } from '../src/backbones/load.js';
import { loadClassifier } from '../src/classifier/load.js';
import { predictImages } from '../src/classifier/predict.js';
import { exportClassifier } from '../src/export/export.js';
import { createFeatureExtractor } from '../src/features/extract.js';
import { layersModelToOnnx } from '../src/onnx/convert.js';
import { decodeModel } from '../src/onnx/proto.js';
import { activationParams, calibrationModel, quantizationPoints, quantizeModel, QuantizeError, type TensorRange } from '../src/onnx/quantize.js';
import { calibrationSample, int8Model } from '../src/runtime/int8.js';
import { createServer } from '../src/serve/server.js';
import { getTf } from '../src/runtime/tfjs.js';
import { trainFromFolder } from '../src/train/run.js';
import { Rng } from '../src/util/rng.js';
import { HYMENOPTERA, MOBILENET, hasShared, makeDataset, runCli, saveArtifacts, tmpDir } from './helpers.js';

/** A small MobileNet-like backbone with random weights (seeded), 32x32 input, 24-d pooled output (wider than the float stem's 16 channels: every convolution is quantized by default). */
async function makeMobileLike(dir: string): Promise<string> {
  const tf = await getTf();
  const rng = new Rng(7);
  const input = tf.input({ shape: [32, 32, 3], name: 'input_1' });
  const A = (l: TF.layers.Layer, x: TF.SymbolicTensor | TF.SymbolicTensor[]) => l.apply(x) as TF.SymbolicTensor;
  let x = A(tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]], name: 'conv1_pad' }), input);
  x = A(tf.layers.conv2d({ filters: 24, kernelSize: 3, strides: 2, useBias: false, name: 'conv1' }), x);
  x = A(tf.layers.batchNormalization({ name: 'conv1_bn' }), x);
  const x0 = A(tf.layers.reLU({ maxValue: 6, name: 'conv1_relu' }), x);
  let y = A(tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false, name: 'dw' }), x0);
  y = A(tf.layers.batchNormalization({ name: 'dw_bn' }), y);
  y = A(tf.layers.reLU({ maxValue: 6, name: 'dw_relu' }), y);
  y = A(tf.layers.conv2d({ filters: 24, kernelSize: 1, useBias: false, name: 'pw' }), y);
  y = A(tf.layers.batchNormalization({ name: 'pw_bn' }), y);
  const z = A(tf.layers.add({ name: 'add' }), [x0, y]);
  const out = A(tf.layers.globalAveragePooling2d({ name: 'pool' }), z);
  const model = tf.model({ inputs: input, outputs: out, name: 'mobile_like' });
  for (const l of model.layers) {
    const ws = l.getWeights();
    if (!ws.length) continue;
    l.setWeights(
      ws.map((w, k) => {
        const n = w.size;
        const isBn = l.getClassName() === 'BatchNormalization';
        // BN: gamma ~1, beta ~0.3, mean ~0, variance ~1; convs: uniform with a per-channel spread
        const vals = Float32Array.from({ length: n }, (_, i) => (isBn ? [1 + 0.3 * rng.next(), 0.3 * (rng.next() - 0.3), 0.1 * (rng.next() - 0.5), 0.5 + rng.next()][k]! : (rng.next() - 0.5) * (1 + (i % 5))));
        return tf.tensor(vals, w.shape);
      }),
    );
  }
  await writeLayersModel(dir, await saveArtifacts(tf, model));
  model.dispose();
  return dir;
}

function images(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  // smooth random images in [-1, 1] (preprocessed as 'tf')
  const x = new Float32Array(n * 32 * 32 * 3);
  for (let b = 0; b < n; b++) {
    const f = [rng.next() * 0.5, rng.next() * 0.5, rng.next() * 6];
    for (let i = 0; i < 32 * 32 * 3; i++) x[b * 3072 + i] = Math.sin(i * f[0]! + f[2]!) * Math.cos((i % 96) * f[1]!) * 0.9;
  }
  return x;
}

async function run(bytes: Uint8Array, x: Float32Array, n: number, extra: Record<string, unknown> = {}): Promise<Record<string, Float32Array>> {
  const ort = await import('onnxruntime-node');
  const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: 1, ...extra });
  const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', x, [n, 32, 32, 3]) });
  await s.release();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
}

function relError(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += a[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

let backboneDir: string;
let floatBytes: Uint8Array;

beforeAll(async () => {
  backboneDir = await makeMobileLike(tmpDir());
  const bb = await loadBackbone(backboneDir);
  floatBytes = layersModelToOnnx(bb.artifacts!).bytes;
});

describe('the QDQ quantizer', () => {
  it('plans where to quantize: conv inputs, ReLU6 outputs (fused), the linear projection and the residual Add', () => {
    const points = quantizationPoints(floatBytes);
    const names = points.map((p) => p.tensor);
    expect(points.filter((p) => p.clip).map((p) => p.clip)).toEqual([{ lo: 0, hi: 6 }, { lo: 0, hi: 6 }]);
    expect(names).toHaveLength(5); // input (after the NHWC→NCHW transpose), conv1_relu, dw_relu, pw (linear), add
    expect(names.some((n) => /add/.test(n))).toBe(true);
  });

  it('activation parameters: the range always holds 0, ReLU6 clips it to [0, 6], a constant tensor gets scale 1', () => {
    expect(activationParams({ min: -1, max: 3 })).toEqual({ scale: 4 / 255, zeroPoint: 64 });
    expect(activationParams({ min: 0.5, max: 2 }).zeroPoint).toBe(0);
    expect(activationParams({ min: 0, max: 9 }, { lo: 0, hi: 6 })).toEqual({ scale: 6 / 255, zeroPoint: 0 });
    expect(activationParams({ min: 0, max: 0 })).toEqual({ scale: 1, zeroPoint: 0 });
  });

  it('quantizes per channel in QDQ form, close to the float model; onnxruntime runs it as QLinearConv and QLinearAdd', async () => {
    const n = 24;
    const calib = images(n, 1);
    const points = quantizationPoints(floatBytes);
    const cal = calibrationModel(floatBytes, points);
    const outs = await run(cal.bytes, calib, n);
    const ranges = new Map<string, TensorRange>();
    for (const p of points) {
      const d = outs[p.tensor]!;
      expect(d, p.tensor).toBeDefined();
      ranges.set(p.tensor, { min: d.reduce((a, v) => Math.min(a, v), Infinity), max: d.reduce((a, v) => Math.max(a, v), -Infinity) });
    }
    const q = quantizeModel(floatBytes, ranges);
    expect(q.report).toEqual({ convs: 3, depthwise: 1, adds: 1, floatConvs: 0, foldedPads: 1, activationTensors: 5 });
    const m = decodeModel(q.bytes);
    const ops = m.graph.node.map((x: any) => x.op_type);
    expect(ops.filter((o: string) => o === 'Pad')).toHaveLength(0); // ZeroPadding2D folded into the conv's pads
    expect(ops.filter((o: string) => o === 'QuantizeLinear')).toHaveLength(5);
    const w = m.graph.initializer.find((i: any) => i.name.endsWith('/weight_int8'));
    expect(w.data_type).toBe(3); // INT8
    const ws = m.graph.initializer.find((i: any) => i.name.endsWith('/weight_scale'));
    expect(ws.dims[0]).toBeGreaterThan(1); // one scale per output channel
    expect(m.metadata_props.find((p: any) => p.key === 'tlearn.quantization')).toBeDefined();
    // on images it was not calibrated on
    const test = images(16, 99);
    const f = (await run(floatBytes, test, 16)).output!;
    const i8 = (await run(q.bytes, test, 16)).output!;
    expect(relError(f, i8)).toBeLessThan(0.05);
    // what onnxruntime makes of it
    const opt = path.join(tmpDir(), 'opt.onnx');
    await run(q.bytes, test, 16, { optimizedModelFilePath: opt });
    const optOps = decodeModel(new Uint8Array(await fs.readFile(opt))).graph.node.map((x: any) => x.op_type);
    expect(optOps.filter((o: string) => o === 'QLinearConv')).toHaveLength(3);
    expect(optOps).toContain('QLinearAdd');
    expect(optOps).not.toContain('Conv');
  });

  it('keeps a narrow stem float: the leading convolutions of at most floatStem channels, with their activations, but never every convolution', () => {
    const ranges = (o: { floatStem?: number }) => new Map(quantizationPoints(floatBytes, o).map((p) => [p.tensor, { min: -1, max: 6 }]));
    // this model is 24 channels wide throughout: a stem of up to 24 channels would be all of it, so all is quantized
    expect(quantizeModel(floatBytes, ranges({ floatStem: 24 }), { floatStem: 24 }).report).toMatchObject({ convs: 3, floatConvs: 0 });
    expect(quantizeModel(floatBytes, ranges({ floatStem: 0 }), { floatStem: 0 }).report).toMatchObject({ convs: 3, floatConvs: 0 });
  });

  it.skipIf(!hasShared(MOBILENET, 'the float-stem test on MobileNetV2-0.35'))('MobileNetV2-0.35: its first three convolutions (16, 16 and 8 channels at 112x112) stay float, onnxruntime runs them as Conv', async () => {
    const bytes = layersModelToOnnx((await loadBackbone(MOBILENET)).artifacts!).bytes;
    const points = quantizationPoints(bytes);
    const q = quantizeModel(bytes, new Map(points.map((p) => [p.tensor, { min: -1, max: 6 }])));
    expect(q.report).toMatchObject({ convs: 49, floatConvs: 3 });
    expect(quantizeModel(bytes, new Map(quantizationPoints(bytes, { floatStem: 0 }).map((p) => [p.tensor, { min: -1, max: 6 }])), { floatStem: 0 }).report).toMatchObject({ convs: 52, floatConvs: 0 });
    const opt = path.join(tmpDir(), 'opt.onnx');
    const ort = await import('onnxruntime-node');
    const s = await ort.InferenceSession.create(q.bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: 1, optimizedModelFilePath: opt });
    await s.release();
    const ops = decodeModel(new Uint8Array(await fs.readFile(opt))).graph.node.map((x: any) => x.op_type);
    expect(ops.filter((o: string) => o === 'QLinearConv')).toHaveLength(49);
    expect(ops.filter((o: string) => o === 'Conv' || o === 'FusedConv')).toHaveLength(3);
  });

  it('refuses to quantize without a range for every point', () => {
    expect(() => quantizeModel(floatBytes, new Map())).toThrow(QuantizeError);
    expect(() => quantizeModel(floatBytes, new Map())).toThrow(/no calibration range for tensor/);
  });
});

describe('int8 models: calibration, cache, extraction', () => {
  let data: string;
  let files: string[];
  beforeAll(async () => {
    data = await makeDataset(tmpDir(), { classes: { red: 10, green: 10, blue: 10 }, seed: 3, size: 40 });
    files = (await Promise.all(['red', 'green', 'blue'].map(async (c) => (await fs.readdir(path.join(data, c))).map((f) => path.join(data, c, f))))).flat();
  });

  it('samples calibration images evenly over the sorted list, so every class folder is represented', () => {
    const s = calibrationSample(files, 6);
    expect(s).toHaveLength(6);
    expect(new Set(s.map((p) => path.basename(path.dirname(p))))).toEqual(new Set(['red', 'green', 'blue']));
    expect(calibrationSample(files, 1000)).toHaveLength(30);
  });

  it('calibrates once, then comes from the cache; other calibration images give another model', async () => {
    const feed = { inputSize: [32, 32] as [number, number], preprocessing: 'tf' as const, resize: 'squash' as const };
    const a = await int8Model(floatBytes, 'k1', feed, { calibration: files, calibrationImages: 12 });
    expect([a.cached, a.calibrated, a.failed]).toEqual([false, 12, 0]);
    const b = await int8Model(floatBytes, 'k1', feed, { calibration: files, calibrationImages: 12 });
    expect(b.cached).toBe(true);
    expect(Buffer.from(b.bytes).equals(Buffer.from(a.bytes))).toBe(true);
    const c = await int8Model(floatBytes, 'k1', feed, { calibration: files, calibrationImages: 6 });
    expect(c.id).not.toBe(a.id);
    await expect(int8Model(floatBytes, 'k1', feed, { calibration: [] })).rejects.toThrow(/needs calibration images/);
    await expect(int8Model(floatBytes, 'k2', feed, { calibration: [path.join(data, 'missing.jpg')] })).rejects.toThrow(/none of the 1 calibration images could be read \(.*missing.jpg/);
  });

  it('int8 extraction: features close to the float ones, under their own store key, cached like any other', async () => {
    const bb = await loadBackbone(backboneDir);
    const fl = await createFeatureExtractor(bb, {});
    const q = await createFeatureExtractor(bb, { int8: { calibration: files, calibrationImages: 15 } });
    try {
      expect(q.key).not.toBe(fl.key);
      expect(q.runtime).toMatch(/int8 \(3 convolutions incl\. 1 depthwise, 1 adds quantized; calibrated on 15 images/);
      expect(q.int8!.report.convs).toBe(3);
      const f = await fl.extract(files);
      const i = await q.extract(files);
      expect(i.computed).toBe(30);
      expect(relError(f.features, i.features)).toBeLessThan(0.05);
      const again = await q.extract(files);
      expect([again.fromCache, again.computed]).toEqual([30, 0]);
      expect(Buffer.from(again.features.buffer).equals(Buffer.from(i.features.buffer))).toBe(true);
    } finally {
      await fl.close();
      await q.close();
    }
  });
});

describe('--int8 in the commands', () => {
  let data: string;
  let runDir: string;
  beforeAll(async () => {
    data = await makeDataset(tmpDir(), { classes: { red: 12, green: 12, blue: 12 }, seed: 5 });
    const backbone = await makeMobileLike(tmpDir());
    runDir = (await trainFromFolder({ data, backbone, int8: 20, epochs: 10, batchSize: 8, lr: 0.02, seed: 2, out: path.join(tmpDir(), 'tiny-int8') })).outDir;
  });

  it('train --int8 records it; the head trains on int8 features; fine-tuning refuses it', async () => {
    const opts = JSON.parse(await fs.readFile(path.join(runDir, 'options.json'), 'utf8'));
    expect(opts.options.int8).toBe(20);
    const metrics = JSON.parse(await fs.readFile(path.join(runDir, 'metrics.json'), 'utf8'));
    expect(metrics.test.accuracy ?? metrics.testAccuracy ?? metrics.test?.metrics?.accuracy).toBeGreaterThan(0.6);
    const r = await runCli(['train', data, '--backbone', path.join(runDir, 'model'), '--mode', 'finetune', '--int8', '--out', path.join(tmpDir(), 'x')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--int8 applies to transfer learning .* --mode finetune trains the float network/);
    const bad = await runCli(['train', data, '--int8', '0']);
    expect(bad.stderr).toMatch(/--int8 must be an integer >= 1, got '0'/);
  });

  it('serve --int8: predictions from the int8 classifier, the model card says so; without a run split it asks for --calibrate', async () => {
    const app = await createServer([runDir], { threads: 1, int8: {} });
    try {
      const card = JSON.parse((await app.inject({ method: 'GET', url: '/v1/models' })).body);
      const c = (card.models ?? card)[0];
      expect(c.runtime).toMatch(new RegExp(`int8 \\(3 convolutions incl\\. 1 depthwise, 1 adds quantized; calibrated on 20 images`));
      const green = await fs.readFile(path.join(data, 'green', 'img_000.jpg'));
      const res = await app.inject({ method: 'POST', url: `/v1/models/${c.name}/predict`, payload: green, headers: { 'content-type': 'image/jpeg' } });
      expect(res.statusCode).toBe(200);
      const body = JSON.parse(res.body);
      expect(body.predictions[0].top[0].label).toBe('green');
      const clf = await loadClassifier(runDir);
      const offline = await predictImages(clf, [path.join(data, 'green', 'img_000.jpg')]);
      expect(Math.abs(offline.predictions[0]!.top[0]!.probability - body.predictions[0].top[0].probability)).toBeLessThan(0.05);
    } finally {
      await app.close();
    }
    // a model folder copied away from its run has no split.json
    const lone = path.join(tmpDir(), 'lone');
    await fs.cp(path.join(runDir, 'model'), lone, { recursive: true });
    await expect(createServer([lone], { threads: 1, int8: {} })).rejects.toThrow(/int8 needs calibration images and there is no run split .* pass --calibrate/);
    const app2 = await createServer([lone], { threads: 1, int8: { calibrate: path.join(data, 'red') } });
    await app2.close();
    const r = await runCli(['serve', runDir, '--calibrate', data, '--port', '0']);
    expect(r.stderr).toMatch(/--calibrate applies to --int8/);
  });

  it('export --format onnx --int8 writes a QDQ model that predict runs; other formats refuse it', async () => {
    const out = path.join(tmpDir(), 'm8.onnx');
    const r = await exportClassifier(runDir, { format: 'onnx', out, int8: {} });
    const meta = JSON.parse(await fs.readFile(r.files[1]!, 'utf8'));
    expect(meta.int8.quantized.convs).toBe(3);
    expect(meta.int8.calibrationImages).toBe(20); // as many as the run's `--int8 20`, the same sample of its training split
    const ops = decodeModel(new Uint8Array(await fs.readFile(out))).graph.node.map((x: any) => x.op_type);
    expect(ops).toContain('QuantizeLinear');
    const floatOut = path.join(tmpDir(), 'm.onnx');
    await exportClassifier(runDir, { format: 'onnx', out: floatOut });
    const img = path.join(data, 'blue', 'img_001.jpg');
    const p8 = await predictImages(await loadClassifier(out), [img]);
    const pf = await predictImages(await loadClassifier(floatOut), [img]);
    expect(p8.predictions[0]!.top[0]!.label).toBe(pf.predictions[0]!.top[0]!.label);
    await expect(exportClassifier(runDir, { format: 'tfjs', out: path.join(tmpDir(), 't'), int8: {} })).rejects.toThrow(/--int8 applies to --format onnx \(not tfjs\)/);
    const cli = await runCli(['export', runDir, '--format', 'onnx', '--int8', '10', '--out', path.join(tmpDir(), 'c.onnx')]);
    expect(cli.stderr).toBe('');
    expect(cli.stdout).toMatch(/exported onnx: .*c\.onnx/);
  });

  it('extract --int8 stores vectors under the int8 key; not with --queue', async () => {
    const home = tmpDir();
    const r = await runCli(['extract', data, '--backbone', backboneDirOf(runDir), '--int8', '12', '--json'], { TLEARN_HOME: home });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.computed).toBe(36);
    const f = await runCli(['extract', data, '--backbone', backboneDirOf(runDir), '--json'], { TLEARN_HOME: home });
    expect(JSON.parse(f.stdout).key).not.toBe(out.key);
    const again = await runCli(['extract', data, '--backbone', backboneDirOf(runDir), '--int8', '12', '--json'], { TLEARN_HOME: home });
    expect(JSON.parse(again.stdout)).toMatchObject({ key: out.key, computed: 0, fromStore: 36 });
    const q = await runCli(['extract', data, '--int8', '--queue', 'redis://127.0.0.1:9'], { TLEARN_HOME: home });
    expect(q.stderr).toMatch(/--int8 is not available with --queue/);
  });
});

/** The backbone folder a run was trained on (recorded in its options). */
function backboneDirOf(run: string): string {
  return JSON.parse(readFileSync(path.join(run, 'options.json'), 'utf8')).options.backbone;
}

describe.runIf(hasShared(MOBILENET, 'int8 MobileNetV2-0.35') && hasShared(HYMENOPTERA, 'ants/bees images'))('int8 MobileNetV2-0.35 on real images', () => {
  it('gives features close to the float backbone on ants/bees images it was not calibrated on', async () => {
    const dir = (c: string) => path.join(HYMENOPTERA, c);
    const list = async (d: string) => (await fs.readdir(d)).map((f) => path.join(d, f)).filter((f) => /\.jpe?g$/i.test(f));
    const train = [...(await list(dir('train/ants'))), ...(await list(dir('train/bees')))];
    const val = [...(await list(dir('val/ants'))).slice(0, 10), ...(await list(dir('val/bees'))).slice(0, 10)];
    const bb = await loadBackbone(MOBILENET);
    const fl = await createFeatureExtractor(bb, { cache: false });
    const q = await createFeatureExtractor(bb, { cache: false, int8: { calibration: train, calibrationImages: 60 } });
    try {
      const f = await fl.extract(val);
      const i = await q.extract(val);
      let minCos = 1;
      for (let r = 0; r < val.length; r++) {
        let dot = 0;
        let na = 0;
        let nb = 0;
        for (let k = 0; k < f.dim; k++) {
          const a = f.features[r * f.dim + k]!;
          const b = i.features[r * f.dim + k]!;
          dot += a * b;
          na += a * a;
          nb += b * b;
        }
        minCos = Math.min(minCos, dot / Math.sqrt(na * nb));
      }
      console.log(`int8 vs float MobileNetV2-0.35 features on 20 ants/bees val images: min cosine ${minCos.toFixed(4)}`);
      expect(minCos).toBeGreaterThan(0.95); // measured 0.9721 (calibration 'batch-average', the stem float; 0.9381 with 'minmax', all quantized)
    } finally {
      await fl.close();
      await q.close();
    }
  });
});
