/**
 * Training a head on cached features: seeded shuffling, dropout and initialisation (the same inputs give the
 * same model), Keras-style epoch lines, class weights, label smoothing, decoupled weight decay, early stopping
 * on validation loss, and the best epoch's weights kept.
 */
import type * as TF from '@tensorflow/tfjs';
import { getTf, tfBackendName } from '../runtime/tfjs.js';
import { Rng } from '../util/rng.js';
import type { Logger } from '../util/log.js';
import { InterruptedError, stopSignalName } from '../util/interrupt.js';
import type { EpochLog, TrainingListener } from './events.js';
import { eventListener } from './event-render.js';
import { buildHead, headSpec, type HeadOptions, type HeadSpec } from './head.js';
import { createOptimizer, DEFAULT_LR, type OptimizerName } from './optimizers.js';

/** Rows of features with integer labels. */
export interface LabelledFeatures {
  x: Float32Array;
  y: Int32Array;
  dim: number;
}

export type { EpochLog };

export interface TrainOptions extends HeadOptions {
  classes: number;
  epochs?: number;
  batchSize?: number;
  optimizer?: OptimizerName;
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  labelSmoothing?: number;
  /** 'auto' weights each class by n / (classes * count); or explicit per-class weights. */
  classWeights?: 'auto' | number[];
  /** Stop after this many epochs without a lower validation loss (default: never). */
  patience?: number;
  /** Which validation number picks the best epoch: val_loss (default) or val_acc. */
  monitor?: 'val_loss' | 'val_acc';
  seed?: number;
  /** Draws the epochs on this logger when there is no `onEvent`. */
  logger?: Logger;
  /** Called after every epoch. */
  onEpoch?: (log: EpochLog) => void;
  /** The training events ('epoch' with phase 'head', and 'log' lines); instead of `logger`. */
  onEvent?: TrainingListener;
  /** Put on the events. */
  label?: string;
  /** Stops training after the current batch (InterruptedError). */
  signal?: AbortSignal;
}

export interface TrainedHead {
  /** The head in its shipped form (softmax output), with the best epoch's weights. */
  model: TF.Sequential;
  spec: HeadSpec;
  history: EpochLog[];
  bestEpoch: number;
  stoppedEarly: boolean;
  backend: string;
  options: Required<Pick<TrainOptions, 'epochs' | 'batchSize' | 'optimizer' | 'lr' | 'weightDecay' | 'labelSmoothing' | 'seed'>> & {
    classWeights: number[] | null;
    patience: number | null;
    momentum: number | null;
  };
}

export class TrainingError extends Error {}

export function autoClassWeights(y: Int32Array, classes: number): number[] {
  const counts = new Array(classes).fill(0);
  for (const l of y) counts[l]++;
  return counts.map((c) => (c ? y.length / (classes * c) : 0));
}

function gatherRows(src: LabelledFeatures, idx: ArrayLike<number>, from: number, to: number): { x: Float32Array; y: Int32Array } {
  const n = to - from;
  const x = new Float32Array(n * src.dim);
  const y = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const i = idx[from + k]!;
    x.set(src.x.subarray(i * src.dim, (i + 1) * src.dim), k * src.dim);
    y[k] = src.y[i]!;
  }
  return { x, y };
}

/** Mean loss and accuracy of the logits model on a set, in batches. */
async function measure(tf: typeof TF, model: TF.Sequential, data: LabelledFeatures, classes: number, batch: number): Promise<{ loss: number; acc: number }> {
  const n = data.y.length;
  let loss = 0;
  let correct = 0;
  for (let s = 0; s < n; s += batch) {
    const e = Math.min(n, s + batch);
    const [l, c] = tf.tidy(() => {
      const x = tf.tensor2d(data.x.subarray(s * data.dim, e * data.dim), [e - s, data.dim]);
      const labels = tf.tensor1d(data.y.subarray(s, e), 'int32');
      const logits = model.apply(x, { training: false }) as TF.Tensor2D;
      const ce = tf.losses.softmaxCrossEntropy(tf.oneHot(labels, classes), logits, undefined, 0, tf.Reduction.SUM);
      const hits = tf.equal(tf.argMax(logits, 1), labels).sum();
      return [ce, hits];
    });
    loss += (await l.data())[0]!;
    correct += (await c.data())[0]!;
    l.dispose();
    c.dispose();
  }
  return { loss: loss / n, acc: correct / n };
}

export async function trainHead(train: LabelledFeatures, val: LabelledFeatures | undefined, o: TrainOptions): Promise<TrainedHead> {
  const tf = await getTf();
  const listener = eventListener(o);
  const emit: TrainingListener = o.label === undefined ? listener : (e) => listener({ ...e, label: o.label });
  const info = (message: string) => emit({ type: 'log', level: 'info', message });
  const classes = o.classes;
  const epochs = o.epochs ?? 10;
  const batchSize = o.batchSize ?? 128;
  const optimizerName = o.optimizer ?? 'adam';
  const lr = o.lr ?? DEFAULT_LR[optimizerName];
  const weightDecay = o.weightDecay ?? 0;
  const labelSmoothing = o.labelSmoothing ?? 0;
  const seed = o.seed ?? 42;
  if (!(Number.isInteger(epochs) && epochs > 0)) throw new TrainingError(`--epochs must be a positive integer, got ${epochs}`);
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new TrainingError(`--batch-size must be a positive integer, got ${batchSize}`);
  if (!(lr > 0)) throw new TrainingError(`--lr must be positive, got ${lr}`);
  if (!(labelSmoothing >= 0 && labelSmoothing < 1)) throw new TrainingError(`--label-smoothing must be in [0, 1), got ${labelSmoothing}`);
  if (!(weightDecay >= 0)) throw new TrainingError(`--weight-decay must be >= 0, got ${weightDecay}`);
  if (o.patience !== undefined && !(Number.isInteger(o.patience) && o.patience > 0)) throw new TrainingError(`--patience must be a positive integer, got ${o.patience}`);
  const n = train.y.length;
  if (n === 0) throw new TrainingError('no training images');
  const classWeights = o.classWeights === 'auto' ? autoClassWeights(train.y, classes) : (o.classWeights ?? null);
  if (classWeights && classWeights.length !== classes) throw new TrainingError(`class weights: ${classWeights.length} values for ${classes} classes`);

  const spec = headSpec(train.dim, classes, o);
  const model = buildHead(tf, spec, 'logits', seed);
  const optimizer = createOptimizer(tf, { name: optimizerName, lr, momentum: o.momentum });
  const vars = model.trainableWeights.map((w) => (w as any).val as TF.Variable);
  const kernels = model.trainableWeights.filter((w) => w.name.endsWith('kernel')).map((w) => (w as any).val as TF.Variable);
  const cw = classWeights ? tf.tensor1d(classWeights) : null;
  const rng = new Rng(seed);
  const history: EpochLog[] = [];
  let best = { loss: Infinity, epoch: 0, weights: model.getWeights().map((t) => t.clone()) };
  let stale = 0;
  let stoppedEarly = false;
  const order = Array.from({ length: n }, (_, i) => i);

  // The step runs on the head's variables directly (no layer bookkeeping) and syncs once per epoch.
  const steps = model.layers.map((layer) => {
    if (layer.getClassName() === 'Dropout') return { dropout: (layer as any).rate as number };
    const l = layer as any;
    return { kernel: l.kernel.read() as TF.Variable, bias: (l.bias?.read() ?? null) as TF.Variable | null, relu: l.activation.getClassName() === 'relu' };
  });
  const forward = (x: TF.Tensor, dropoutSeed: number): TF.Tensor => {
    let h = x;
    steps.forEach((st, k) => {
      if ('dropout' in st) h = tf.dropout(h, st.dropout!, undefined, dropoutSeed + k);
      else {
        h = tf.matMul(h, st.kernel);
        if (st.bias) h = tf.add(h, st.bias);
        if (st.relu) h = tf.relu(h);
      }
    });
    return h;
  };

  for (let epoch = 1; epoch <= epochs; epoch++) {
    // the epochs on cached features only await promises that are already resolved: let timers, I/O and signal
    // handlers (Ctrl-C, a caller's abort) run between them
    await new Promise((resolve) => setImmediate(resolve));
    const t0 = performance.now();
    rng.shuffle(order);
    let lossAcc = tf.scalar(0);
    let hitsAcc = tf.scalar(0, 'int32');
    for (let s = 0; s < n; s += batchSize) {
      const e = Math.min(n, s + batchSize);
      const b = gatherRows(train, order, s, e);
      const dropoutSeed = rng.seed();
      const next = tf.tidy(() => {
        const x = tf.tensor2d(b.x, [e - s, train.dim]);
        const labels = tf.tensor1d(b.y, 'int32');
        const onehot = tf.oneHot(labels, classes);
        const weights = cw ? tf.gather(cw, labels) : undefined;
        let hits: TF.Tensor | undefined;
        const { value, grads } = tf.variableGrads(() => {
          const logits = forward(x, dropoutSeed);
          hits = tf.keep(tf.equal(tf.argMax(logits, 1), labels).sum());
          return tf.losses.softmaxCrossEntropy(onehot, logits, weights, labelSmoothing, tf.Reduction.MEAN) as TF.Scalar;
        }, vars);
        optimizer.applyGradients(grads as TF.NamedTensorMap);
        if (weightDecay > 0) for (const v of kernels) v.assign(tf.mul(v, 1 - lr * weightDecay));
        const out = [tf.add(lossAcc, tf.mul(value, e - s)), tf.add(hitsAcc, hits!)];
        hits!.dispose();
        return out;
      });
      lossAcc.dispose();
      hitsAcc.dispose();
      [lossAcc, hitsAcc] = next as [TF.Scalar, TF.Scalar];
      if (o.signal?.aborted) {
        for (const t of [lossAcc, hitsAcc, ...best.weights, cw]) t?.dispose();
        model.dispose();
        optimizer.dispose();
        const batches = Math.ceil(n / batchSize);
        throw new InterruptedError(`stopped while training the head (epoch ${epoch}/${epochs}, batch ${Math.ceil(e / batchSize)}/${batches})`, stopSignalName(o.signal));
      }
    }
    const lossSum = (await lossAcc.data())[0]!;
    const correct = (await hitsAcc.data())[0]!;
    lossAcc.dispose();
    hitsAcc.dispose();
    const v = val && val.y.length ? await measure(tf, model, val, classes, 1024) : { loss: NaN, acc: NaN };
    const entry: EpochLog = { epoch, loss: lossSum / n, acc: correct / n, val_loss: v.loss, val_acc: v.acc, seconds: (performance.now() - t0) / 1000, lr };
    history.push(entry);
    o.onEpoch?.(entry);
    emit({ type: 'epoch', phase: 'head', epochs, log: entry });
    const monitored = o.monitor === 'val_acc' ? -(Number.isNaN(v.acc) ? entry.acc : v.acc) : Number.isNaN(v.loss) ? entry.loss : v.loss;
    if (monitored < best.loss) {
      best.weights.forEach((t) => t.dispose());
      best = { loss: monitored, epoch, weights: model.getWeights().map((t) => t.clone()) };
      stale = 0;
    } else if (o.patience !== undefined && ++stale >= o.patience) {
      stoppedEarly = true;
      info(`early stopping: ${o.monitor ?? 'val_loss'} has not improved for ${o.patience} epoch${o.patience > 1 ? 's' : ''}`);
      break;
    }
  }
  if (best.epoch !== history.length) info(`keeping the weights of epoch ${best.epoch} (${o.monitor === 'val_acc' ? `highest val_acc ${(-best.loss).toFixed(4)}` : `lowest val_loss ${best.loss.toFixed(4)}`})`);
  const shipped = buildHead(tf, spec, 'softmax', seed);
  shipped.setWeights(best.weights);
  best.weights.forEach((t) => t.dispose());
  model.dispose();
  cw?.dispose();
  optimizer.dispose();
  return {
    model: shipped,
    spec,
    history,
    bestEpoch: best.epoch,
    stoppedEarly,
    backend: tfBackendName(),
    options: {
      epochs,
      batchSize,
      optimizer: optimizerName,
      lr,
      weightDecay,
      labelSmoothing,
      seed,
      classWeights,
      patience: o.patience ?? null,
      momentum: optimizerName === 'sgd' ? (o.momentum ?? 0.9) : optimizerName === 'rmsprop' ? (o.momentum ?? 0) : null,
    },
  };
}

/** Class probabilities of a head for rows of features. */
export async function predictHead(model: TF.LayersModel, x: Float32Array, dim: number, batch = 2048): Promise<Float32Array> {
  const tf = await getTf();
  const n = x.length / dim;
  const classes = (model.outputs[0]!.shape as number[])[1]!;
  const out = new Float32Array(n * classes);
  for (let s = 0; s < n; s += batch) {
    const e = Math.min(n, s + batch);
    const p = tf.tidy(() => model.predict(tf.tensor2d(x.subarray(s * dim, e * dim), [e - s, dim])) as TF.Tensor);
    out.set((await p.data()) as Float32Array, s * classes);
    p.dispose();
  }
  return out;
}
