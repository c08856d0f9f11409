/**
 * Temperature scaling: the fit recovers a known temperature, folding it into the final Dense layer gives exactly
 * the rescaled probabilities (nested Sequential, Dense + Activation), and a run ships a calibrated model whose
 * predict, ONNX export and reported probabilities agree.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type * as TF from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { composeClassifier } from '../src/classifier/compose.js';
import { loadClassifier } from '../src/classifier/load.js';
import { predictImages } from '../src/classifier/predict.js';
import { applyTemperature, CalibrationError, finalLogitsLayer, fitTemperature, foldTemperature } from '../src/engine/calibration.js';
import { computeMetrics } from '../src/evaluate/metrics.js';
import { exportClassifier } from '../src/export/export.js';
import { getTf } from '../src/runtime/tfjs.js';
import { trainFromFolder } from '../src/train/run.js';
import { Rng } from '../src/util/rng.js';
import { makeDataset, makeTinyBackbone, runCli, saveArtifacts, tmpDir } from './helpers.js';

function softmaxRows(z: Float64Array, K: number, scale = 1): Float32Array {
  const out = new Float32Array(z.length);
  for (let off = 0; off < z.length; off += K) {
    let max = -Infinity;
    for (let k = 0; k < K; k++) max = Math.max(max, scale * z[off + k]!);
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.exp(scale * z[off + k]! - max);
    for (let k = 0; k < K; k++) out[off + k] = Math.exp(scale * z[off + k]! - max) / s;
  }
  return out;
}

/** n samples whose labels are drawn from softmax(z): softmax(z) is calibrated, softmax(z * s) is not. */
function syntheticLogits(n: number, K: number, seed: number): { z: Float64Array; labels: Int32Array } {
  const rng = new Rng(seed);
  const z = Float64Array.from({ length: n * K }, () => 2 * rng.normal());
  const p = softmaxRows(z, K);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let u = rng.next();
    let c = 0;
    while (c < K - 1 && (u -= p[i * K + c]!) > 0) c++;
    labels[i] = c;
  }
  return { z, labels };
}

describe('fitTemperature / applyTemperature', () => {
  it('recovers the temperature of an over- and an under-confident model, and lowers NLL and ECE', () => {
    const K = 10;
    const { z, labels } = syntheticLogits(4000, K, 3);
    for (const s of [2.5, 0.5]) {
      const probs = softmaxRows(z, K, s);
      const fit = fitTemperature(probs, labels, K);
      expect(fit.temperature).toBeGreaterThan(s * 0.9);
      expect(fit.temperature).toBeLessThan(s * 1.1);
      expect(fit.nllAfter).toBeLessThan(fit.nllBefore);
      expect(fit.atBound).toBe(false);
      const names = Array.from({ length: K }, (_, i) => `c${i}`);
      const before = computeMetrics(probs, labels, names);
      const after = computeMetrics(applyTemperature(probs, K, fit.temperature), labels, names);
      expect(after.ece).toBeLessThan(before.ece / 2);
      expect(after.ece).toBeLessThan(0.03);
      // scaling never changes the predicted class
      expect(after.accuracy).toBe(before.accuracy);
      expect(after.confusion).toEqual(before.confusion);
    }
  });

  it('applyTemperature is softmax(logits / T) and T = 1 leaves probabilities as they are', () => {
    const K = 5;
    const { z } = syntheticLogits(20, K, 4);
    const p = softmaxRows(z, K);
    const scaled = applyTemperature(p, K, 1.7);
    const direct = softmaxRows(z, K, 1 / 1.7);
    scaled.forEach((v, i) => expect(Math.abs(v - direct[i]!)).toBeLessThan(1e-6));
    applyTemperature(p, K, 1).forEach((v, i) => expect(Math.abs(v - p[i]!)).toBeLessThan(1e-6));
  });

  it('a calibrated model keeps T near 1; bad input is refused', () => {
    const K = 4;
    const { z, labels } = syntheticLogits(4000, K, 5);
    const fit = fitTemperature(softmaxRows(z, K), labels, K);
    expect(Math.abs(fit.temperature - 1)).toBeLessThan(0.1);
    expect(() => fitTemperature(new Float32Array(0), new Int32Array(0), K)).toThrow(/no predictions/);
    expect(() => fitTemperature(new Float32Array(7), new Int32Array(2), K)).toThrow(/7 probabilities for 2 samples of 4 classes/);
  });
});

describe('foldTemperature', () => {
  let tf: typeof TF;
  beforeAll(async () => {
    tf = await getTf();
  });

  async function predict(a: Awaited<ReturnType<typeof saveArtifacts>>, x: Float32Array, shape: number[]): Promise<Float32Array> {
    const m = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: a.modelTopology as any, weightSpecs: a.weightSpecs as any, weightData: a.weightData }));
    const y = (m.predict(tf.tensor(x, shape)) as TF.Tensor).dataSync() as Float32Array;
    m.dispose();
    return Float32Array.from(y);
  }

  it('folds 1/T into the final Dense of a nested classifier (backbone + head) and of Dense + Activation(softmax)', async () => {
    const rng = new Rng(8);
    const x = Float32Array.from({ length: 4 * 6 }, () => rng.normal());
    const backbone = tf.sequential({ layers: [tf.layers.dense({ inputShape: [6], units: 5, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }), name: 'bb_dense' })], name: 'bb' });
    const head = tf.sequential({ layers: [tf.layers.dense({ inputShape: [5], units: 3, activation: 'softmax', kernelInitializer: tf.initializers.randomNormal({ seed: 2, stddev: 2 }), biasInitializer: tf.initializers.randomNormal({ seed: 3 }), name: 'head_output' })], name: 'head' });
    const nested = composeClassifier(await saveArtifacts(tf, backbone), await saveArtifacts(tf, head));
    const separate = tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [6], units: 3, kernelInitializer: tf.initializers.randomNormal({ seed: 4, stddev: 2 }), biasInitializer: tf.initializers.randomNormal({ seed: 5 }), name: 'logits' }),
        tf.layers.activation({ activation: 'softmax', name: 'probs' }),
      ],
    });
    const cases = [
      { a: nested, layer: 'head_output' },
      { a: await saveArtifacts(tf, separate), layer: 'logits' },
    ];
    for (const { a, layer } of cases) {
      expect(finalLogitsLayer(a.modelTopology)).toBe(layer);
      const p = await predict(a, x, [4, 6]);
      const folded = foldTemperature(a, 2.2);
      expect(folded.layer).toBe(layer);
      const q = await predict(folded.artifacts, x, [4, 6]);
      const expected = applyTemperature(p, 3, 2.2);
      q.forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThan(1e-5));
      // the input artifacts are left untouched
      const again = await predict(a, x, [4, 6]);
      again.forEach((v, i) => expect(v).toBe(p[i]));
    }
    backbone.dispose();
    head.dispose();
    separate.dispose();
  });

  it('refuses models without a final Dense + softmax, and bad temperatures', async () => {
    const m = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3, activation: 'sigmoid', name: 'd' })] });
    const a = await saveArtifacts(tf, m);
    m.dispose();
    expect(() => foldTemperature(a, 2)).toThrow(CalibrationError);
    expect(() => foldTemperature(a, 2)).toThrow(/does not end in a Dense layer feeding a softmax \(it ends in Dense d\)/);
    const ok = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3, activation: 'softmax', name: 'd' })] });
    const b = await saveArtifacts(tf, ok);
    ok.dispose();
    expect(() => foldTemperature(b, 0)).toThrow(/temperature must be a positive number/);
    expect(() => foldTemperature(b, Number.NaN)).toThrow(/temperature must be a positive number/);
  });
});

describe('calibration in a run', () => {
  let data: string;
  let backbone: string;
  beforeAll(async () => {
    // 3 classes x 50 images: 22 validation images, enough for a fit
    data = await makeDataset(tmpDir(), { classes: { red: 50, green: 50, blue: 50 }, seed: 21, size: 40 });
    backbone = await makeTinyBackbone(tmpDir());
  });

  it('transfer: fits T on val, folds it into the model; predict, the ONNX export and the reported probabilities agree', async () => {
    const raw = await trainFromFolder({ data, backbone, epochs: 30, lr: 0.05, batchSize: 8, seed: 4, calibrate: false, out: path.join(tmpDir(), 'raw') });
    const r = await trainFromFolder({ data, backbone, epochs: 30, lr: 0.05, batchSize: 8, seed: 4, out: path.join(tmpDir(), 'cal') });
    const c = r.metrics.calibration;
    expect(c.method).toBe('temperature');
    expect(c.layer).toBe('head_output');
    expect(c.temperature).toBeGreaterThan(0);
    expect(c.temperature).not.toBe(1);
    expect(c.val.after.loss).toBeLessThan(c.val.before.loss);
    expect(c.val.before.loss).toBeCloseTo(raw.metrics.val.loss, 5);
    expect(c.test.before.ece).toBeCloseTo(raw.metrics.test.ece, 5);
    expect(c.test.after.ece).toBeCloseTo(r.metrics.test.ece, 10);
    expect(raw.metrics.calibration).toMatchObject({ method: 'none', note: 'turned off with --no-calibrate' });
    // the predicted classes do not change
    expect(r.metrics.test.accuracy).toBe(raw.metrics.test.accuracy);
    expect(r.metrics.test.confusion).toEqual(raw.metrics.test.confusion);

    const meta = JSON.parse(await fs.readFile(path.join(r.outDir, 'model', 'metadata.json'), 'utf8'));
    expect(meta.calibration).toEqual({ method: 'temperature', temperature: c.temperature, layer: 'head_output', fittedOn: 'validation split', folded: true });
    expect(JSON.parse(await fs.readFile(path.join(raw.outDir, 'model', 'metadata.json'), 'utf8')).calibration).toBeUndefined();

    // the shipped model outputs the calibrated probabilities: test-predictions.csv = predict on the test images
    const csv = (await fs.readFile(path.join(r.outDir, 'test-predictions.csv'), 'utf8')).trim().split('\n').slice(1);
    const rows = csv.map((l) => l.split(','));
    const clf = await loadClassifier(r.outDir);
    const pred = await predictImages(clf, rows.map((f) => f[0]!));
    pred.predictions.forEach((p, i) => {
      expect(p.top[0]!.label).toBe(rows[i]![2]);
      expect(Math.abs(p.top[0]!.probability - Number(rows[i]![3]))).toBeLessThan(1e-4);
    });
    // and the raw model's probabilities, rescaled by T, are the calibrated model's
    const rawPred = await predictImages(await loadClassifier(raw.outDir), rows.map((f) => f[0]!));
    const K = 3;
    const rawProbs = Float32Array.from(rawPred.predictions.flatMap((p) => p.probabilities));
    const rescaled = applyTemperature(rawProbs, K, c.temperature);
    pred.predictions.forEach((p, i) => p.probabilities.forEach((v, k) => expect(Math.abs(v - rescaled[i * K + k]!)).toBeLessThan(1e-5)));

    // the ONNX export gives the same calibrated probabilities as predict (max difference <= 1e-5)
    const exp = await exportClassifier(r.outDir, { format: 'onnx', out: path.join(tmpDir(), 'cal.onnx') });
    expect(JSON.parse(await fs.readFile(exp.files[1]!, 'utf8')).calibration.temperature).toBe(c.temperature);
    const fromOnnx = await predictImages(await loadClassifier(exp.files[0]!), rows.map((f) => f[0]!));
    let maxDiff = 0;
    fromOnnx.predictions.forEach((p, i) => p.probabilities.forEach((v, k) => (maxDiff = Math.max(maxDiff, Math.abs(v - pred.predictions[i]!.probabilities[k]!)))));
    expect(maxDiff).toBeLessThanOrEqual(1e-5);

    const html = await fs.readFile(r.report.html, 'utf8');
    expect(html).toContain('Temperature scaling: the logits are divided by T = ');
    expect(html).toContain('test ECE');
  });

  it('scratch: the notebook CNN gets a temperature too, folded into dense_2 (Dense + Activation softmax)', async () => {
    const r = await trainFromFolder({ data, mode: 'scratch', inputSize: [48, 48], epochs: 3, batchSize: 16, lr: 0.003, seed: 1, out: path.join(tmpDir(), 'scratch') });
    const c = r.metrics.calibration;
    expect(c).toMatchObject({ method: 'temperature', layer: 'dense_2' });
    expect(c.val.after.loss).toBeLessThanOrEqual(c.val.before.loss);
    const clf = await loadClassifier(r.outDir);
    expect(clf.metadata.calibration?.layer).toBe('dense_2');
    // the exported ONNX file and the TF.js model agree on the calibrated output
    const exp = await exportClassifier(r.outDir, { format: 'onnx', out: path.join(tmpDir(), 'scratch.onnx') });
    const s = await ort.InferenceSession.create(await fs.readFile(exp.files[0]!));
    const x = Float32Array.from({ length: 2 * 48 * 48 * 3 }, (_, i) => (Math.sin(i) + 1) / 2);
    const onnxOut = (await s.run({ input: new ort.Tensor('float32', x, [2, 48, 48, 3]) })).probabilities!.data as Float32Array;
    const tf: typeof TF = await getTf();
    const m = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: clf.artifacts!.modelTopology as any, weightSpecs: clf.artifacts!.weightSpecs as any, weightData: clf.artifacts!.weightData }));
    const tfOut = (m.predict(tf.tensor4d(x, [2, 48, 48, 3])) as TF.Tensor).dataSync();
    onnxOut.forEach((v, i) => expect(Math.abs(v - tfOut[i]!)).toBeLessThan(1e-5));
    await s.release();
  });

  it('a too small input size for the scratch CNN is a clear error', async () => {
    await expect(trainFromFolder({ data, mode: 'scratch', inputSize: [24, 24], epochs: 1, out: path.join(tmpDir(), 'tiny') })).rejects.toThrow(/input size 24x24 is too small for notebook-cnn/);
  });

  it('too few validation images: the model is left as it is and the run says why; the CLI flag turns it off', async () => {
    const small = await makeDataset(tmpDir(), { classes: { red: 12, green: 12 }, seed: 2, size: 32 });
    const r = await trainFromFolder({ data: small, backbone, epochs: 2, batchSize: 8, seed: 1, out: path.join(tmpDir(), 'small') });
    expect(r.metrics.calibration).toMatchObject({ method: 'none', temperature: 1, note: expect.stringMatching(/only \d+ validation images, at least 20 are needed/) });
    const cli = await runCli(['train', data, '--backbone', backbone, '--epochs', '2', '--no-calibrate', '--out', path.join(tmpDir(), 'cli'), '--quiet']);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toContain('calibration: none (turned off with --no-calibrate)');
    const help = await runCli(['train', '--help']);
    expect(help.stdout).toMatch(/--no-calibrate\s+keep the raw probabilities/);
  });
});
