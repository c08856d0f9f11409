/**
 * The onnxruntime training engine end to end: training graphs built from Keras models match finite differences,
 * micro-batching equals one big batch, Relu/MaxPool reordering changes nothing, and a trained model round-trips.
 */
import * as ort from 'onnxruntime-node';
import type * as TF from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { LayersModelArtifacts } from '../src/backbones/layers-model.js';
import { buildOnnxGraph } from '../src/onnx/convert.js';
import { buildTrainingGraph, poolBeforeRelu } from '../src/engine/grad/builder.js';
import { OnnxTrainer } from '../src/engine/onnx-trainer.js';
import { JsOptimizer } from '../src/engine/optimizers-js.js';
import { getTf } from '../src/runtime/tfjs.js';
import { Rng } from '../src/util/rng.js';
import { checkTrainingGradients, saveArtifacts } from './helpers.js';

let tf: typeof TF;
let tiny: LayersModelArtifacts;

beforeAll(async () => {
  tf = await getTf();
  // conv (same, stride 2) → relu → maxpool → depthwise → relu6 → GAP → dense → softmax, no dropout
  const m = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [12, 12, 3], filters: 6, kernelSize: 3, strides: 2, padding: 'same', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }), biasInitializer: tf.initializers.randomNormal({ seed: 2, stddev: 0.1 }), name: 'c1' }),
      tf.layers.activation({ activation: 'relu', name: 'r1' }),
      tf.layers.maxPooling2d({ poolSize: 2, name: 'p1' }),
      tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', depthwiseInitializer: tf.initializers.glorotUniform({ seed: 3 }), name: 'dw' }),
      tf.layers.reLU({ maxValue: 6, name: 'r6' }),
      tf.layers.globalAveragePooling2d({ name: 'gap' }),
      tf.layers.dense({ units: 4, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }), name: 'out' }),
    ],
  });
  tiny = await saveArtifacts(tf, m);
  m.dispose();
});

function randomBatch(n: number, seed: number) {
  const rng = new Rng(seed);
  return { x: Float32Array.from({ length: n * 12 * 12 * 3 }, () => rng.next() * 2 - 1), y: Int32Array.from({ length: n }, () => rng.int(4)) };
}

describe('training graph', () => {
  it('loss gradients of every parameter match finite differences', async () => {
    const build = buildOnnxGraph(tiny, { training: { trainable: () => true }, logits: true });
    const tg = buildTrainingGraph(build, 3);
    const { x, y } = randomBatch(3, 5);
    const onehot = new Float32Array(3 * 4);
    y.forEach((c, i) => (onehot[i * 4 + c] = 1));
    expect(tg.params.map((p) => p.name.split('/')[0])).toEqual(['c1', 'c1', 'dw', 'dw', 'out', 'out']);
    await checkTrainingGradients(build, tg, x, onehot, { samples: 6, seed: 9 });
  });

  it('reordering Relu → MaxPool as MaxPool → Relu gives the same loss and gradients', async () => {
    const a = buildOnnxGraph(tiny, { training: { trainable: () => true }, logits: true });
    const swapped = buildTrainingGraph(a, 4);
    const b = buildOnnxGraph(tiny, { training: { trainable: () => true }, logits: true });
    const original = buildTrainingGraph({ ...b, graph: b.graph }, 4);
    expect(poolBeforeRelu(buildOnnxGraph(tiny, { training: { trainable: () => true }, logits: true }).graph)).toBe(1);
    const { x, y } = randomBatch(4, 6);
    const onehot = new Float32Array(16);
    y.forEach((c, i) => (onehot[i * 4 + c] = 1));
    const out = async (bytes: Uint8Array, params: typeof a.params) => {
      const s = await ort.InferenceSession.create(bytes);
      const feeds: Record<string, ort.Tensor> = { input: new ort.Tensor('float32', x, [4, 12, 12, 3]), labels: new ort.Tensor('float32', onehot, [4, 4]), sample_weights: new ort.Tensor('float32', new Float32Array(4).fill(1), [4]) };
      params.forEach((p) => (feeds[p.onnxName] = new ort.Tensor('float32', p.initial, p.dims)));
      return s.run(feeds);
    };
    // build the un-reordered reference by hand: a graph whose Relu feeds two consumers is never reordered
    const r1 = await out(swapped.bytes, a.params);
    const r2 = await out(original.bytes, b.params);
    expect((r1.loss!.data as Float32Array)[0]).toBeCloseTo((r2.loss!.data as Float32Array)[0]!, 5);
    for (const p of swapped.params) {
      const g1 = r1[p.grad]!.data as Float32Array;
      const g2 = r2[p.grad]!.data as Float32Array;
      g1.forEach((v, i) => expect(Math.abs(v - g2[i]!)).toBeLessThan(1e-5));
    }
  });
});

describe('OnnxTrainer', () => {
  it('micro-batches of 2 give the same update as one batch of 8', async () => {
    const { x, y } = randomBatch(8, 7);
    const a = await OnnxTrainer.create(tiny, { trainable: () => true, microBatch: 8, optimizer: 'sgd', lr: 0.1, momentum: 0, seed: 1 });
    const b = await OnnxTrainer.create(tiny, { trainable: () => true, microBatch: 2, optimizer: 'sgd', lr: 0.1, momentum: 0, seed: 1 });
    const ra = await a.trainBatch(x, y);
    const rb = await b.trainBatch(x, y);
    expect(ra.lossSum).toBeCloseTo(rb.lossSum, 4);
    expect(ra.correct).toBe(rb.correct);
    a.values.forEach((v, k) => v.forEach((w, i) => expect(Math.abs(w - b.values[k]![i]!)).toBeLessThan(1e-5)));
    // a batch that is not a multiple of the micro-batch is padded with zero-weight samples
    const c = await OnnxTrainer.create(tiny, { trainable: () => true, microBatch: 3, optimizer: 'sgd', lr: 0.1, momentum: 0, seed: 1 });
    await c.trainBatch(x, y);
    a.values.forEach((v, k) => v.forEach((w, i) => expect(Math.abs(w - c.values[k]![i]!)).toBeLessThan(1e-5)));
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('frozen weights stay frozen, and training lowers the loss', async () => {
    const t = await OnnxTrainer.create(tiny, { trainable: (n) => n.startsWith('out/'), microBatch: 4, optimizer: 'adam', lr: 0.05, seed: 2 });
    expect(t.paramCount).toBe(6 * 4 + 4);
    const { x, y } = randomBatch(16, 8);
    const first = await t.trainBatch(x, y);
    let last = first;
    for (let i = 0; i < 30; i++) last = await t.trainBatch(x, y);
    expect(last.lossSum).toBeLessThan(first.lossSum);
    const exported = t.exportArtifacts();
    const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: exported.modelTopology as any, weightSpecs: exported.weightSpecs as any, weightData: exported.weightData }));
    const before = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: tiny.modelTopology as any, weightSpecs: tiny.weightSpecs as any, weightData: tiny.weightData }));
    expect(Array.from(model.getLayer('c1').getWeights()[0]!.dataSync())).toEqual(Array.from(before.getLayer('c1').getWeights()[0]!.dataSync()));
    expect(Array.from(model.getLayer('out').getWeights()[0]!.dataSync())).not.toEqual(Array.from(before.getLayer('out').getWeights()[0]!.dataSync()));
    // the engine's predictions equal tfjs' on the exported model
    const probs = await t.predict(x, 16);
    const ref = (model.predict(tf.tensor4d(x, [16, 12, 12, 3])) as TF.Tensor).dataSync();
    probs.forEach((v, i) => expect(Math.abs(v - ref[i]!)).toBeLessThan(1e-5));
    await t.close();
  });
});

describe('JS optimizers', () => {
  it('Adadelta follows Keras (TF) on one step: the new accumulator scales the update', () => {
    const w = new Float32Array([1]);
    const opt = new JsOptimizer({ name: 'adadelta', lr: 1 }, [{ value: w, decay: false }]);
    opt.step([new Float32Array([2])]);
    const acc = 0.05 * 4;
    const upd = (Math.sqrt(1e-7) / Math.sqrt(acc + 1e-7)) * 2;
    expect(w[0]).toBeCloseTo(1 - upd, 6);
  });

  it('Adam, SGD with momentum and RMSprop match tfjs on a quadratic', async () => {
    for (const name of ['adam', 'sgd', 'rmsprop'] as const) {
      const w = new Float32Array([1, -2, 3]);
      const opt = new JsOptimizer({ name, lr: 0.1, momentum: 0.9 }, [{ value: w, decay: false }]);
      const v = tf.variable(tf.tensor1d([1, -2, 3]));
      const ref = name === 'adam' ? tf.train.adam(0.1, 0.9, 0.999, 1e-7) : name === 'sgd' ? tf.train.momentum(0.1, 0.9) : tf.train.rmsprop(0.1, 0.9, 0, 1e-7);
      for (let step = 0; step < 5; step++) {
        opt.step([Float32Array.from(w, (x) => 2 * x)]);
        ref.minimize(() => tf.sum(tf.square(v)) as TF.Scalar, false, [v]);
      }
      const got = Array.from(w);
      Array.from(v.dataSync()).forEach((x, i) => expect(Math.abs(got[i]! - x), `${name}`).toBeLessThan(1e-4));
    }
  });
});
