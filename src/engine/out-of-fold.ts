/**
 * Out-of-fold probabilities: K seeded, stratified folds; for each, a multinomial logistic regression (a linear
 * softmax head, L2-regularised, Adam on mini-batches of standardised features) trained on the other folds
 * predicts the held-out fold, and a temperature fitted on that fold's predictions rescales them. Every image's
 * probabilities then come from a head that never saw it: what confident learning needs.
 *
 * tfjs (WebAssembly, SIMD) does the matrix products: on 5,000 x 1280 features it is more than ten times
 * faster here than a plain JavaScript loop (measured: 0.45 s against 8.4 s for one 5000x1280x97 product).
 */
import type * as TF from '@tensorflow/tfjs';
import { getTf } from '../runtime/tfjs.js';
import { Rng } from '../util/rng.js';
import { stratifiedFolds } from '../data/label-issues-folds.js';
import { applyTemperature, fitTemperature } from './calibration.js';

export interface OutOfFoldOptions {
  /** Number of folds (default 5). */
  folds?: number;
  seed?: number;
  /** Passes over the training part of each fold (default 20). */
  epochs?: number;
  /** L2 penalty on the weights, per image (default 1e-4). */
  l2?: number;
  /** Adam learning rate (default 0.01 on standardised features). */
  lr?: number;
  batchSize?: number;
  /** Fit a temperature per fold on its held-out predictions (default true). */
  calibrate?: boolean;
  /** Called after each fold: folds done, folds in all. */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface OutOfFoldResult {
  /** n * classes probabilities, row i from the head of the fold that held image i out. */
  probs: Float32Array;
  fold: Int32Array;
  folds: number;
  /** The temperature of each fold (1 when not calibrated). */
  temperatures: number[];
  /** Accuracy of the out-of-fold predictions against the given labels. */
  accuracy: number;
  seconds: number;
}

/** Per-column mean and 1/std of the rows in `rows`. */
function standardiser(x: Float32Array, dim: number, rows: number[]): { mean: Float32Array; inv: Float32Array } {
  const mean = new Float64Array(dim);
  const sq = new Float64Array(dim);
  for (const i of rows) {
    const o = i * dim;
    for (let d = 0; d < dim; d++) {
      const v = x[o + d]!;
      mean[d]! += v;
      sq[d]! += v * v;
    }
  }
  const m = new Float32Array(dim);
  const inv = new Float32Array(dim);
  for (let d = 0; d < dim; d++) {
    m[d] = mean[d]! / rows.length;
    const v = sq[d]! / rows.length - m[d]! * m[d]!;
    inv[d] = 1 / Math.sqrt(Math.max(v, 0) + 1e-6);
  }
  return { mean: m, inv };
}

function gather(x: Float32Array, dim: number, rows: number[], s: { mean: Float32Array; inv: Float32Array }): Float32Array {
  const out = new Float32Array(rows.length * dim);
  rows.forEach((i, k) => {
    const o = i * dim;
    const w = k * dim;
    for (let d = 0; d < dim; d++) out[w + d] = (x[o + d]! - s.mean[d]!) * s.inv[d]!;
  });
  return out;
}

/** A softmax head trained on (x, y) rows; returns the probabilities of `test` rows. */
async function fitPredict(tf: typeof TF, trainX: Float32Array, trainY: Int32Array, testX: Float32Array, dim: number, classes: number, o: Required<Pick<OutOfFoldOptions, 'epochs' | 'l2' | 'lr' | 'batchSize'>> & { seed: number; signal?: AbortSignal }): Promise<Float32Array> {
  const n = trainY.length;
  const rng = new Rng(o.seed);
  const w = tf.variable(tf.randomNormal([dim, classes], 0, 0.01, 'float32', o.seed));
  const b = tf.variable(tf.zeros([classes]));
  const opt = tf.train.adam(o.lr);
  const X = tf.tensor2d(trainX, [n, dim]);
  const Y = tf.oneHot(tf.tensor1d(trainY, 'int32'), classes);
  const order = Array.from({ length: n }, (_, i) => i);
  try {
    for (let e = 0; e < o.epochs; e++) {
      if (o.signal?.aborted) throw o.signal.reason ?? new Error('aborted');
      rng.shuffle(order);
      for (let s = 0; s < n; s += o.batchSize) {
        const idx = tf.tensor1d(order.slice(s, s + o.batchSize), 'int32');
        tf.tidy(() => {
          const xb = tf.gather(X, idx);
          const yb = tf.gather(Y, idx);
          opt.minimize(() => {
            const logits = tf.add(tf.matMul(xb, w), b);
            const ce = tf.losses.softmaxCrossEntropy(yb, logits);
            return tf.add(ce, tf.mul(o.l2, tf.sum(tf.square(w)))) as TF.Scalar;
          }, false, [w, b]);
        });
        idx.dispose();
      }
      // give the event loop a turn between epochs (progress, Ctrl-C)
      await new Promise((r) => setImmediate(r));
    }
    const probs = tf.tidy(() => tf.softmax(tf.add(tf.matMul(tf.tensor2d(testX, [testX.length / dim, dim]), w), b)));
    const out = (await probs.data()) as Float32Array;
    probs.dispose();
    return out;
  } finally {
    X.dispose();
    Y.dispose();
    w.dispose();
    b.dispose();
    opt.dispose();
  }
}

/** Out-of-fold probabilities of every row of `x` (n rows of `dim` features) with labels `y`. */
export async function outOfFoldProbabilities(x: Float32Array, y: Int32Array, dim: number, classes: number, o: OutOfFoldOptions = {}): Promise<OutOfFoldResult> {
  const t0 = performance.now();
  const n = y.length;
  const folds = o.folds ?? 5;
  const seed = o.seed ?? 42;
  if (x.length !== n * dim) throw new RangeError(`${x.length} feature values for ${n} rows of ${dim}`);
  const fold = stratifiedFolds(y, folds, seed);
  const tf = await getTf();
  const probs = new Float32Array(n * classes);
  const temperatures: number[] = [];
  for (let f = 0; f < folds; f++) {
    const trainRows: number[] = [];
    const testRows: number[] = [];
    for (let i = 0; i < n; i++) (fold[i] === f ? testRows : trainRows).push(i);
    if (!testRows.length) {
      temperatures.push(1);
      continue;
    }
    const s = standardiser(x, dim, trainRows);
    const p = await fitPredict(tf, gather(x, dim, trainRows, s), Int32Array.from(trainRows, (i) => y[i]!), gather(x, dim, testRows, s), dim, classes, {
      epochs: o.epochs ?? 20,
      l2: o.l2 ?? 1e-4,
      lr: o.lr ?? 0.01,
      batchSize: o.batchSize ?? 256,
      seed: seed + f,
      signal: o.signal,
    });
    let scaled = p;
    let temperature = 1;
    if (o.calibrate ?? true) {
      temperature = fitTemperature(p, Int32Array.from(testRows, (i) => y[i]!), classes).temperature;
      scaled = applyTemperature(p, classes, temperature);
    }
    temperatures.push(temperature);
    testRows.forEach((i, k) => probs.set(scaled.subarray(k * classes, (k + 1) * classes), i * classes));
    o.onProgress?.(f + 1, folds);
  }
  let hits = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < classes; j++) if (probs[i * classes + j]! > probs[i * classes + best]!) best = j;
    if (best === y[i]) hits++;
  }
  return { probs, fold, folds, temperatures, accuracy: hits / n, seconds: (performance.now() - t0) / 1000 };
}
