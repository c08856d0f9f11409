/**
 * TFLite import: tiny float, uint8 and int8 models built here with the flatbuffers builder, converted to ONNX
 * (integer operators, QDQ, dequantized float) and checked against a plain-JS float forward pass; bad files;
 * and the two shared MobileNetV2-1.0 models (skipped when ../shared is absent).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { loadBackbone } from '../src/backbones/load.js';
import { listTfliteBackbones, loadTfliteBackbone, readTfliteFile } from '../src/backbones/tflite/load.js';
import { readTflite, TfliteFormatError } from '../src/backbones/tflite/reader.js';
import { loadClassifier } from '../src/classifier/load.js';
import { predictImages } from '../src/classifier/predict.js';
import { backboneRunner } from '../src/features/extract.js';
import { tfliteToOnnx, type TfliteOnnxForm } from '../src/onnx/tflite/convert.js';
import { symmetricChannels } from '../src/onnx/tflite/requantize.js';
import { exportClassifier } from '../src/export/export.js';
import { createServer } from '../src/serve/server.js';
import { trainFromFolder } from '../src/train/run.js';
import { HYMENOPTERA, hasShared, makeDataset, SHARED, tmpDir } from './helpers.js';
import { TINY, tinyForward, tinyImages, tinyTflite, tinyWeights, type TinyKind } from './tflite-fixtures.js';

async function runOnnx(bytes: Uint8Array, images: Float32Array[], h: number, w: number): Promise<Float32Array[]> {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  const x = new Float32Array(images.length * h * w * 3);
  images.forEach((im, i) => x.set(im, i * h * w * 3));
  const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', x, [images.length, h, w, 3]) });
  const y = out[s.outputNames[0]!]!.data as Float32Array;
  await s.release();
  const dim = y.length / images.length;
  return images.map((_, i) => y.slice(i * dim, (i + 1) * dim));
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i]!)));
const argmax = (a: ArrayLike<number>) => Array.from(a).indexOf(Math.max(...Array.from(a)));

const W = tinyWeights();
const imgs = tinyImages(12);

describe('TFLite reader and converter on tiny models built here', () => {
  it('reads what the builder wrote: tensors, quantization, operators and their options', () => {
    const m = readTflite(tinyTflite('int8', W, imgs.real), 'tiny-int8.tflite');
    expect(m.operators.map((o) => o.opName)).toEqual(['QUANTIZE', 'CONV_2D', 'DEPTHWISE_CONV_2D', 'ADD', 'AVERAGE_POOL_2D', 'RESHAPE', 'FULLY_CONNECTED', 'SOFTMAX']);
    const conv = m.operators[1]!;
    expect(conv.options).toMatchObject({ padding: 0, stride_w: 2, stride_h: 2, fused_activation_function: 3, dilation_w_factor: 1 });
    const dw = m.tensors[m.operators[2]!.inputs[1]!]!;
    expect(dw.shape).toEqual([1, 3, 3, 4]);
    expect(dw.quantization!.axis).toBe(3);
    expect(dw.quantization!.scale.length).toBe(4);
    expect(m.tensors[m.inputs[0]!]!.typeName).toBe('UINT8');
  });

  it('float model: the ONNX conversion matches the reference forward pass', async () => {
    const r = tfliteToOnnx(readTflite(tinyTflite('float', W, imgs.real), 'tiny.tflite'));
    expect(r.form).toBe('float');
    const out = await runOnnx(r.bytes, imgs.real, TINY.h, TINY.w);
    for (let i = 0; i < imgs.real.length; i++) expect(maxDiff(out[i]!, tinyForward(imgs.real[i]!, W).probs)).toBeLessThan(1e-5);
    const feats = await runOnnx(tfliteToOnnx(readTflite(tinyTflite('float', W, imgs.real), 'tiny.tflite'), { output: 'features' }).bytes, imgs.real, 8, 8);
    expect(maxDiff(feats[0]!, tinyForward(imgs.real[0]!, W).pooled)).toBeLessThan(1e-5);
  });

  for (const kind of ['uint8', 'int8'] as TinyKind[]) {
    it(`${kind} model: integer operators, QDQ and dequantized float agree with the float reference`, async () => {
      const m = readTflite(tinyTflite(kind, W, imgs.real), `tiny-${kind}.tflite`);
      const results: Record<string, Float32Array[]> = {};
      for (const form of ['qlinear', 'qdq', 'float'] as TfliteOnnxForm[]) {
        const r = tfliteToOnnx(m, { form });
        expect(r.quantized).toBe(true);
        if (form === 'qlinear') expect(r.opTypes).toEqual(expect.arrayContaining(['QLinearConv', 'com.microsoft.QLinearAdd', 'com.microsoft.QLinearGlobalAveragePool']));
        if (form === 'float') expect(r.opTypes.some((t) => t.includes('QLinear') || t === 'QuantizeLinear')).toBe(false);
        results[form] = await runOnnx(r.bytes, imgs.pixels, 8, 8);
      }
      // the file's weights exactly, zero points and all (--exact-weights; the default requantizes them to symmetric int8)
      results.exact = await runOnnx(tfliteToOnnx(m, { form: 'qlinear', exactWeights: true }).bytes, imgs.pixels, 8, 8);
      let agree = 0;
      for (let i = 0; i < imgs.pixels.length; i++) {
        const ref = tinyForward(imgs.real[i]!, W).probs;
        // 8-bit activations: probabilities within a few hundredths of the float network's
        for (const form of ['qlinear', 'qdq', 'float']) expect(maxDiff(results[form]![i]!, ref)).toBeLessThan(0.06);
        expect(maxDiff(results.qlinear![i]!, results.qdq![i]!)).toBeLessThan(0.03);
        expect(maxDiff(results.exact![i]!, ref)).toBeLessThan(0.06);
        if (argmax(results.qlinear![i]!) === argmax(results.float![i]!)) agree++;
      }
      expect(agree).toBeGreaterThanOrEqual(imgs.pixels.length - 1);
    });
  }

  it('uint8 weights with a zero point: requantized to symmetric int8 by default, close to the exact graph (--exact-weights)', async () => {
    const m = readTflite(tinyTflite('uint8', W, imgs.real), 'tiny-uint8.tflite');
    const fast = tfliteToOnnx(m, { form: 'qlinear' });
    const exact = tfliteToOnnx(m, { form: 'qlinear', exactWeights: true });
    // the tiny model's weights are wide: 3 of its 11 channels hold a value out of int8's range and are rescaled
    expect(fast.requantized).toEqual({ channels: 11, rescaled: 3 });
    expect(fast.opTypes).toEqual(exact.opTypes);
    expect(exact.requantized).toBeUndefined();
    // the int8 per-channel model's weights have zero point 0: nothing to requantize
    expect(tfliteToOnnx(readTflite(tinyTflite('int8', W, imgs.real), 'tiny-int8.tflite'), { form: 'qlinear' }).requantized).toBeUndefined();
    const [a, b] = [await runOnnx(fast.bytes, imgs.pixels, 8, 8), await runOnnx(exact.bytes, imgs.pixels, 8, 8)];
    for (let i = 0; i < a.length; i++) expect(maxDiff(a[i]!, b[i]!)).toBeLessThan(0.03);
  });

  it('symmetricChannels: channels that fit int8 keep their scale and integers exactly; a channel out of range is rescaled', () => {
    // 3 output channels (axis 0) of 4 values, zero point 100, per-tensor scale 0.5
    const raw = Uint8Array.from([100, 0, 227, 150, /* fits: -100..127 */ 100, 101, 99, 100, /* fits */ 0, 255, 100, 228 /* 255 - 100 = 155: out of range */]);
    const r = symmetricChannels(raw, 100, [0.5], [3, 4], 0);
    expect(Array.from(r.data.slice(0, 8))).toEqual([0, -100, 127, 50, 0, 1, -1, 0]);
    expect(Array.from(r.scales.slice(0, 2))).toEqual([0.5, 0.5]);
    expect(r.rescaled).toBe(1);
    expect(r.factor[2]).toBeCloseTo(155 / 127, 12);
    expect(r.scales[2]).toBeCloseTo((0.5 * 155) / 127, 6);
    // the rescaled channel's real values are within half its new step of the originals; its extremes are ±127
    const real = [0, 255, 100, 228].map((q) => 0.5 * (q - 100));
    Array.from(r.data.slice(8)).forEach((q, i) => expect(Math.abs(q * r.scales[2]! - real[i]!)).toBeLessThanOrEqual(r.scales[2]! / 2 + 1e-6));
    expect(r.data[9]).toBe(127);
  });

  it('features: found at the global pooling, or cut elsewhere (pooled)', () => {
    const m = readTflite(tinyTflite('uint8', W, imgs.real), 'tiny.tflite');
    const auto = tfliteToOnnx(m, { output: 'features' });
    expect(auto.outputDim).toBe(4);
    expect(auto.note).toMatch(/AVERAGE_POOL_2D/);
    const cut = tfliteToOnnx(m, { output: 'features', cutAt: 'dw_out' });
    expect(cut.outputTensor).toBe('dw_out');
    expect(cut.outputDim).toBe(4);
    expect(() => tfliteToOnnx(m, { output: 'features', cutAt: 'nope' })).toThrow(/tiny\.tflite: --cut-at 'nope'/);
  });
});

describe('a run on a .tflite backbone', () => {
  it('trains a head on its features, ships backbone + head as model/model.onnx, and predicts, exports and serves it as evaluated', async () => {
    const dir = tmpDir('tlearn-tflite-run-');
    const file = path.join(dir, 'tiny.tflite');
    await fs.writeFile(file, tinyTflite('uint8', W, imgs.real));
    const data = await makeDataset(path.join(dir, 'data'), { classes: { red: 12, green: 12, blue: 12 }, size: 32 });
    const run = await trainFromFolder({ data, backbone: file, epochs: 10, lr: 0.05, batchSize: 8, seed: 1, out: path.join(dir, 'run') });
    expect((await fs.readdir(path.join(run.outDir, 'model'))).sort()).toEqual(['metadata.json', 'model.onnx']);
    const clf = await loadClassifier(run.outDir);
    expect(clf.metadata.preprocessing).toBe('raw');
    expect(clf.metadata.backbone.note).toMatch(/uint8 quantized TFLite \(integer operators/);
    // the shipped model gives the probabilities the run evaluated on its test split
    const rows = (await fs.readFile(path.join(run.outDir, 'test-predictions.csv'), 'utf8')).trim().split('\n').slice(1).map((l) => l.split(','));
    expect(rows.length).toBeGreaterThan(3);
    const p = await predictImages(clf, rows.map((r) => r[0]!), { top: 1, threads: 1 });
    p.predictions.forEach((pr, i) => {
      expect(pr.top[0]!.label).toBe(rows[i]![2]);
      expect(pr.top[0]!.probability).toBeCloseTo(Number(rows[i]![3]), 4);
    });
    const exp = await exportClassifier(run.outDir, { format: 'onnx', out: path.join(dir, 'out/clf.onnx') });
    const again = await predictImages(await loadClassifier(exp.files[0]!), [rows[0]![0]!], { top: 1, threads: 1 });
    expect(again.predictions[0]!.top[0]!.probability).toBeCloseTo(p.predictions[0]!.top[0]!.probability, 5);
    await expect(exportClassifier(run.outDir, { format: 'tfjs' })).rejects.toThrow(/TFLite model, which tlearn exports as ONNX only/);
    const app = await createServer([run.outDir], { threads: 1 });
    try {
      const r = await app.inject({ method: 'POST', url: '/v1/predict', payload: await fs.readFile(rows[0]![0]!), headers: { 'content-type': 'image/jpeg' } });
      expect(r.statusCode).toBe(200);
      expect(r.json().predictions[0].top[0].label).toBe(rows[0]![2]);
    } finally {
      await app.close();
    }
    // fine-tuning needs a layers model: refused before any work
    await expect(trainFromFolder({ data, backbone: file, mode: 'finetune', out: path.join(dir, 'ft') })).rejects.toThrow(/fine-tuning needs a Keras or TF.js backbone; .*tiny\.tflite is a TFLite model/);
  }, 120_000);

  it('a .tflite classifier is served with its labels', async () => {
    const dir = tmpDir('tlearn-tflite-');
    const file = path.join(dir, 'tiny.tflite');
    await fs.writeFile(file, tinyTflite('int8', W, imgs.real));
    await fs.writeFile(path.join(dir, 'tiny_labels.txt'), 'one\ntwo\nthree\n');
    const app = await createServer([file], { threads: 1 });
    try {
      const models = (await app.inject({ method: 'GET', url: '/v1/models' })).json();
      expect(JSON.stringify(models)).toContain('"tiny"');
      const png = await import('sharp').then((m) => m.default({ create: { width: 8, height: 8, channels: 3, background: '#808080' } }).png().toBuffer());
      const r = await app.inject({ method: 'POST', url: '/v1/models/tiny/predict', payload: png, headers: { 'content-type': 'image/png' } });
      expect(r.statusCode).toBe(200);
      expect(r.json().predictions[0].top.map((t: any) => t.label).sort()).toEqual(['one', 'three', 'two']);
    } finally {
      await app.close();
    }
  });
});

describe('bad TFLite input: a clear error naming the file', () => {
  it('a truncated file, an empty one, a file that is not TFLite', async () => {
    const dir = tmpDir('tlearn-tflite-');
    const bytes = tinyTflite('uint8', W, imgs.real);
    for (const [name, data] of [
      ['half.tflite', bytes.subarray(0, bytes.length >> 1)],
      ['head.tflite', bytes.subarray(0, 64)],
      ['empty.tflite', new Uint8Array(0)],
      ['png.tflite', Buffer.from('\x89PNG\r\n\x1a\n0000000000000000')],
    ] as const) {
      const file = path.join(dir, name);
      await fs.writeFile(file, data);
      await expect(readTfliteFile(file)).rejects.toThrow(TfliteFormatError);
      await expect(readTfliteFile(file)).rejects.toThrow(file);
      await expect(loadClassifier(file)).rejects.toThrow(file);
    }
    // every prefix of a small model is refused, never read as a model
    for (let n = 0; n < bytes.length; n += 97) expect(() => readTflite(bytes.subarray(0, n), 'cut.tflite')).toThrow(/cut\.tflite/);
    await expect(readTfliteFile(path.join(dir, 'missing.tflite'))).rejects.toThrow(/missing\.tflite does not exist/);
  });

  it('an operator tlearn does not convert is named, with the file', async () => {
    const dir = tmpDir('tlearn-tflite-');
    const file = path.join(dir, 'tanh.tflite');
    await fs.writeFile(file, tinyTflite('float', W, imgs.real, { swapOp: 'SQUARED_DIFFERENCE' }));
    await fs.writeFile(path.join(dir, 'labels.txt'), 'a\nb\nc\n');
    await expect(loadClassifier(file)).rejects.toThrow(new RegExp(`${file}: operator 2 is SQUARED_DIFFERENCE, which tlearn's TFLite converter does not convert`));
    // as a backbone, the operators before the features are converted: the same error when features are extracted
    const bb = await loadBackbone(file);
    await expect(backboneRunner(bb)).rejects.toThrow(/SQUARED_DIFFERENCE/);
  });

  it('a model whose input is not an image', async () => {
    const dir = tmpDir('tlearn-tflite-');
    const file = path.join(dir, 'vector.tflite');
    await fs.writeFile(file, tinyTflite('float', W, imgs.real, { inputShape: [1, 192] }));
    await expect(loadTfliteBackbone(file)).rejects.toThrow(new RegExp(`${file}: not an image model: its input input has shape \\[1,192\\] \\(rank 2\\)`));
    await expect(loadClassifier(file, { labels: file })).rejects.toThrow(/not an image model/);
  });

  it('labels: found next to the model; a wrong count or a missing file names the file', async () => {
    const dir = tmpDir('tlearn-tflite-');
    const file = path.join(dir, 'tiny.tflite');
    await fs.writeFile(file, tinyTflite('uint8', W, imgs.real));
    await expect(loadClassifier(file)).rejects.toThrow(/tiny\.tflite: no labels file found .*--labels/);
    await fs.writeFile(path.join(dir, 'tiny.txt'), 'red\ngreen\n');
    await expect(loadClassifier(file)).rejects.toThrow(`labels file ${path.join(dir, 'tiny.txt')} has 2 labels, but ${file} outputs 3 classes`);
    await fs.writeFile(path.join(dir, 'tiny.txt'), 'red\ngreen\nblue\n');
    const clf = await loadClassifier(file);
    expect(clf.metadata.labels).toEqual(['red', 'green', 'blue']);
    expect(clf.metadata.preprocessing).toBe('raw');
    await expect(loadClassifier(file, { labels: path.join(dir, 'nope.txt') })).rejects.toThrow(`labels file ${path.join(dir, 'nope.txt')} does not exist`);
  });
});

const TFLITE_DIR = path.join(SHARED, 'models/tflite');
const MODELS = ['mobilenet_v2_1.0_224_quant.tflite', 'tf2_mobilenet_v2_1.0_224_ptq.tflite'];
const shared = hasShared(TFLITE_DIR, 'the shared TFLite MobileNetV2 tests');

describe.skipIf(!shared)('the shared TFLite MobileNetV2-1.0 models', () => {
  const coral = ['cat.bmp', 'bird.bmp', 'grace_hopper.bmp', 'parrot.jpg'].map((f) => path.join(SHARED, 'images/coral', f));
  const antsBees = ['train/ants/0013035.jpg', 'train/bees/1092977343_cb42b38d62.jpg', 'val/ants/10308379_1b6c72e180.jpg', 'val/bees/1032546534_06907fe3b3.jpg'].map((f) => path.join(HYMENOPTERA, f));
  const expected: Record<string, RegExp> = { 'cat.bmp': /cat/, 'bird.bmp': /chickadee/, 'grace_hopper.bmp': /military uniform/, 'parrot.jpg': /macaw/ };

  for (const name of MODELS) {
    it(`${name}: ImageNet top-1 of the integer graph agrees with the dequantized float graph on every image`, async () => {
      const file = path.join(TFLITE_DIR, name);
      const images = [...coral, ...antsBees.filter((f) => hasShared(f, 'ants/bees images'))];
      const q = await loadClassifier(file);
      const f = await loadClassifier(file, { form: 'float' });
      const e = await loadClassifier(file, { exactWeights: true });
      expect(q.metadata.labels.length).toBe(1001);
      const pq = await predictImages(q, images, { top: 3, threads: 2 });
      const pf = await predictImages(f, images, { top: 3, threads: 2 });
      const pe = await predictImages(e, images, { top: 3, threads: 2 });
      expect(pq.failed).toEqual([]);
      // the default integer graph (uint8 weights requantized) and the exact one (--exact-weights) both agree with float
      expect(pq.predictions.map((p) => p.top[0]!.label)).toEqual(pf.predictions.map((p) => p.top[0]!.label));
      expect(pe.predictions.map((p) => p.top[0]!.label)).toEqual(pf.predictions.map((p) => p.top[0]!.label));
      if (name.includes('_quant')) expect(q.metadata.backbone.note).toMatch(/weights requantized to symmetric int8/);
      for (const p of pq.predictions) {
        const want = expected[path.basename(p.path)];
        if (want) expect(p.top[0]!.label).toMatch(want);
      }
    }, 120_000);
  }

  it('as backbones: 1280-d features from the pooled layer, integer and float paths close', async () => {
    const listed = await listTfliteBackbones(TFLITE_DIR);
    expect(listed.map((l) => l.name).sort()).toEqual(MODELS.map((m) => m.replace('.tflite', '')).sort());
    for (const l of listed) expect(l.problem).toBeUndefined();
    for (const name of MODELS) {
      const file = path.join(TFLITE_DIR, name);
      const bq = await loadBackbone(file);
      const bf = await loadBackbone(file, { tfliteForm: 'float' });
      expect(bq.id).not.toBe(bf.id);
      expect(bq.preprocessing).toBe('raw');
      expect(bq.inputSize).toEqual([224, 224]);
      const x = Float32Array.from({ length: 224 * 224 * 3 }, (_, i) => (i * 37) % 256);
      const [rq, rf] = [await backboneRunner(bq, { threads: 2 }), await backboneRunner(bf, { threads: 2 })];
      expect(rq.outputDim).toBe(1280);
      const [a, b] = [await rq.run(x, 1), await rf.run(x, 1)];
      const dot = a.reduce((s, v, i) => s + v * b[i]!, 0);
      const cos = dot / Math.sqrt(a.reduce((s, v) => s + v * v, 0) * b.reduce((s, v) => s + v * v, 0));
      expect(cos).toBeGreaterThan(0.95);
      await rq.close();
      await rf.close();
    }
  }, 120_000);
});
