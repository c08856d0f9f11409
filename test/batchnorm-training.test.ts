/**
 * BatchNormalization in training mode: the training graph normalises with batch statistics exactly as
 * tfjs does with training: true, its gradients (gamma, beta and through the batch mean and variance) match
 * finite differences, the moving statistics follow the momentum rule, evaluation uses them, and re-estimation
 * measures the exact statistics of a set of images.
 */
import * as ort from 'onnxruntime-node';
import type * as TF from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeWeights, type LayersModelArtifacts } from '../src/backbones/layers-model.js';
import { buildOnnxGraph } from '../src/onnx/convert.js';
import { buildTrainingGraph } from '../src/engine/grad/builder.js';
import { OnnxTrainer } from '../src/engine/onnx-trainer.js';
import { getTf } from '../src/runtime/tfjs.js';
import { Rng } from '../src/util/rng.js';
import { checkTrainingGradients, saveArtifacts } from './helpers.js';

let tf: typeof TF;
let model: TF.LayersModel;
let art: LayersModelArtifacts;
const S = 8;

function images(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * S * S * 3 }, () => rng.next() * 2 - 1);
}

/** Per-channel mean and (biased) variance of the conv output c1 over a batch, with tfjs. */
function convMoments(x: Float32Array, n: number): { mean: Float32Array; variance: Float32Array } {
  const sub = tf.model({ inputs: model.inputs, outputs: model.getLayer('c1').output as TF.SymbolicTensor });
  return tf.tidy(() => {
    const y = sub.predict(tf.tensor4d(x, [n, S, S, 3])) as TF.Tensor4D;
    const m = tf.moments(y, [0, 1, 2]);
    return { mean: m.mean.dataSync() as Float32Array, variance: m.variance.dataSync() as Float32Array };
  });
}

beforeAll(async () => {
  tf = await getTf();
  // conv → BN (non-trivial gamma, beta and moving statistics) → relu → GAP → dense → BN on a 2-D tensor → softmax
  const input = tf.input({ shape: [S, S, 3] });
  let h = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }), name: 'c1' }).apply(input) as TF.SymbolicTensor;
  h = tf.layers.batchNormalization({ name: 'bn1', momentum: 0.9 }).apply(h) as TF.SymbolicTensor;
  h = tf.layers.activation({ activation: 'relu', name: 'r1' }).apply(h) as TF.SymbolicTensor;
  h = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(h) as TF.SymbolicTensor;
  h = tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }), name: 'd1' }).apply(h) as TF.SymbolicTensor;
  h = tf.layers.batchNormalization({ name: 'bn2' }).apply(h) as TF.SymbolicTensor;
  h = tf.layers.activation({ activation: 'softmax', name: 'out' }).apply(h) as TF.SymbolicTensor;
  model = tf.model({ inputs: input, outputs: h });
  const rng = new Rng(3);
  const vec = (n: number, lo: number, hi: number) => tf.tensor1d(Array.from({ length: n }, () => lo + (hi - lo) * rng.next()));
  model.getLayer('bn1').setWeights([vec(4, 0.5, 1.5), vec(4, -0.5, 0.5), vec(4, -0.2, 0.2), vec(4, 0.5, 2)]);
  model.getLayer('bn2').setWeights([vec(3, 0.5, 1.5), vec(3, -0.5, 0.5), vec(3, -0.2, 0.2), vec(3, 0.5, 2)]);
  art = await saveArtifacts(tf, model);
});

describe('BatchNormalization training mode', () => {
  it('the training graph normalises with batch statistics as tfjs does with training: true, and outputs them', async () => {
    const build = buildOnnxGraph(art, { training: { trainable: () => true }, logits: true });
    expect(build.batchStats.map((b) => [b.layer, b.channels, b.perSample, b.momentum])).toEqual([
      ['bn1', 4, S * S, 0.9],
      ['bn2', 3, 1, 0.99],
    ]);
    expect(build.params.map((p) => p.kerasName).filter((k) => k.startsWith('bn'))).toEqual(['bn1/gamma', 'bn1/beta', 'bn2/gamma', 'bn2/beta']);
    const tg = buildTrainingGraph(build, 5);
    const s = await ort.InferenceSession.create(tg.bytes, { intraOpNumThreads: 1 });
    const x = images(5, 4);
    const feeds: Record<string, ort.Tensor> = {
      input: new ort.Tensor('float32', x, [5, S, S, 3]),
      labels: new ort.Tensor('float32', new Float32Array(15).fill(1 / 3), [5, 3]),
      sample_weights: new ort.Tensor('float32', new Float32Array(5).fill(1), [5]),
    };
    build.params.forEach((p) => (feeds[p.onnxName] = new ort.Tensor('float32', p.initial, p.dims)));
    const out = await s.run(feeds);
    const logits = out[tg.logitsName]!.data as Float32Array;
    const ref = tf.tidy(() => (model.apply(tf.tensor4d(x, [5, S, S, 3]), { training: true }) as TF.Tensor).dataSync());
    const probs = tf.tidy(() => tf.softmax(tf.tensor2d(logits, [5, 3])).dataSync());
    probs.forEach((v, i) => expect(Math.abs(v - ref[i]!)).toBeLessThan(1e-4));
    const m = convMoments(x, 5);
    const bm = out[tg.batchStats[0]!.mean]!.data as Float32Array;
    const bv = out[tg.batchStats[0]!.variance]!.data as Float32Array;
    m.mean.forEach((v, c) => expect(Math.abs(v - bm[c]!)).toBeLessThan(1e-5));
    m.variance.forEach((v, c) => expect(Math.abs(v - bv[c]!)).toBeLessThan(1e-5));
    await s.release();
  });

  it('gradients of every parameter (gamma, beta, and the conv and dense weights through the batch statistics) match finite differences', async () => {
    const build = buildOnnxGraph(art, { training: { trainable: () => true }, logits: true });
    const tg = buildTrainingGraph(build, 4);
    const onehot = new Float32Array(12);
    [0, 2, 1, 2].forEach((c, i) => (onehot[i * 3 + c] = 1));
    await checkTrainingGradients(build, tg, images(4, 6), onehot, { samples: 5, seed: 9 });
  });

  it('the trainer updates moving statistics with the momentum, evaluates with them, and re-estimates them exactly', async () => {
    const trainer = await OnnxTrainer.create(art, { trainable: () => true, microBatch: 6, optimizer: 'sgd', lr: 0.05, seed: 1, threads: 1 });
    expect(trainer.batchNormLayers).toEqual(['bn1', 'bn2']);
    const x = images(6, 7);
    const before = convMoments(x, 6);
    await trainer.trainBatch(x, Int32Array.from([0, 1, 2, 0, 1, 2]));
    const w = decodeWeights(trainer.exportArtifacts());
    const old = decodeWeights(art);
    const count = 6 * S * S;
    const mm = w.get('bn1/moving_mean')!.data;
    const mv = w.get('bn1/moving_variance')!.data;
    for (let c = 0; c < 4; c++) {
      expect(mm[c]).toBeCloseTo(0.9 * old.get('bn1/moving_mean')!.data[c]! + 0.1 * before.mean[c]!, 5);
      expect(mv[c]).toBeCloseTo(0.9 * old.get('bn1/moving_variance')!.data[c]! + 0.1 * before.variance[c]! * (count / (count - 1)), 5);
    }
    // the gamma of bn1 moved (it is trained)
    expect(Array.from(w.get('bn1/gamma')!.data)).not.toEqual(Array.from(old.get('bn1/gamma')!.data));

    // evaluation uses the moving statistics: the exported model in tfjs (inference mode) agrees
    const check = async () => {
      const a = trainer.exportArtifacts();
      const m = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: a.modelTopology as any, weightSpecs: a.weightSpecs as any, weightData: a.weightData }));
      const xe = images(3, 8);
      const ref = tf.tidy(() => (m.predict(tf.tensor4d(xe, [3, S, S, 3])) as TF.Tensor).dataSync());
      const got = await trainer.predict(xe, 3);
      got.forEach((v, i) => expect(Math.abs(v - ref[i]!)).toBeLessThan(1e-5));
      m.dispose();
      return a;
    };
    const trained = await check();

    // re-estimation over 10 images in uneven batches gives their exact statistics (bn1 sees the conv output)
    const all = images(10, 11);
    async function* batches() {
      yield { x: all.subarray(0, 7 * S * S * 3), n: 7 };
      yield { x: all.subarray(7 * S * S * 3), n: 3 };
    }
    const r = await trainer.reestimateBatchNorm(batches());
    expect(r).toEqual({ layers: 2, images: 10 });
    const trainedModel = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: trained.modelTopology as any, weightSpecs: trained.weightSpecs as any, weightData: trained.weightData }));
    const sub = tf.model({ inputs: trainedModel.inputs, outputs: trainedModel.getLayer('c1').output as TF.SymbolicTensor });
    const exact = tf.tidy(() => {
      const mo = tf.moments(sub.predict(tf.tensor4d(all, [10, S, S, 3])) as TF.Tensor, [0, 1, 2]);
      return { mean: mo.mean.dataSync(), variance: mo.variance.dataSync() };
    });
    const re = decodeWeights(trainer.exportArtifacts());
    const n = 10 * S * S;
    for (let c = 0; c < 4; c++) {
      expect(re.get('bn1/moving_mean')!.data[c]).toBeCloseTo(exact.mean[c]!, 5);
      expect(re.get('bn1/moving_variance')!.data[c]).toBeCloseTo(exact.variance[c]! * (n / (n - 1)), 5);
    }
    await check();
    trainedModel.dispose();
    await trainer.close();
  });

  it('frozen BatchNormalization (gamma/beta not trained) stays a constant; bnLive makes its statistics re-estimable', async () => {
    const notBn = (w: string) => !w.startsWith('bn');
    const frozen = await OnnxTrainer.create(art, { trainable: notBn, microBatch: 4, optimizer: 'sgd', lr: 0.05, seed: 1, threads: 1 });
    expect(frozen.batchNormLayers).toEqual([]);
    await frozen.trainBatch(images(4, 2), Int32Array.from([0, 1, 2, 0]));
    const w = decodeWeights(frozen.exportArtifacts());
    expect(Array.from(w.get('bn1/moving_mean')!.data)).toEqual(Array.from(decodeWeights(art).get('bn1/moving_mean')!.data));
    expect(await frozen.reestimateBatchNorm((async function* () {})())).toEqual({ layers: 0, images: 0 });
    await frozen.close();

    const live = await OnnxTrainer.create(art, { trainable: notBn, microBatch: 4, optimizer: 'sgd', lr: 0.05, seed: 1, threads: 1, bnLive: (l) => l === 'bn1' });
    expect(live.batchNormLayers).toEqual(['bn1']);
    const x = images(4, 2);
    await live.trainBatch(x, Int32Array.from([0, 1, 2, 0]));
    // during training bn1 stays in inference mode: its statistics only change by re-estimation
    expect(Array.from(decodeWeights(live.exportArtifacts()).get('bn1/moving_mean')!.data)).toEqual(Array.from(decodeWeights(art).get('bn1/moving_mean')!.data));
    const r = await live.reestimateBatchNorm((async function* () {
      yield { x, n: 4 };
    })());
    expect(r).toEqual({ layers: 1, images: 4 });
    expect(Array.from(decodeWeights(live.exportArtifacts()).get('bn1/moving_mean')!.data)).not.toEqual(Array.from(decodeWeights(art).get('bn1/moving_mean')!.data));
    await live.close();
  });
});
