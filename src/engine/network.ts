/**
 * Training a whole network (from scratch, or a backbone's top for fine-tuning) on images with the onnxruntime
 * training engine: seeded shuffling each epoch, streamed batches, Keras-style epoch lines, validation each
 * epoch, the best epoch by validation loss kept, optional early stopping and learning-rate schedule.
 */
import type { LayersModelArtifacts } from '../backbones/layers-model.js';
import type { PreprocessMode } from '../backbones/preprocess.js';
import type { ResizeKernel, ResizeMode } from '../data/decode.js';
import type { SkippedFile } from '../data/discover.js';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import { Rng } from '../util/rng.js';
import type { EpochLog } from './fit.js';
import { imageBatches, type BatchOptions, type BatchSource } from './image-batches.js';
import { DecodedImageCache } from '../data/decoded-cache.js';
import { decoderName } from '../data/decode.js';
import { OnnxTrainer } from './onnx-trainer.js';
import { DEFAULT_LR, type OptimizerName } from './optimizers.js';

export type LrSchedule = 'constant' | 'cosine' | 'one-cycle';

export interface NetworkTrainOptions {
  classes: number;
  inputSize: [number, number];
  preprocessing: PreprocessMode;
  resize: ResizeMode;
  kernel?: ResizeKernel;
  trainable: (kerasWeightName: string) => boolean;
  /** Learning-rate multiplier per trained weight (discriminative rates). */
  lrMultiplier?: (kerasWeightName: string) => number;
  /** Called with the weights of each new best epoch (checkpoints). */
  onBest?: (artifacts: LayersModelArtifacts, epoch: number) => Promise<void>;
  epochs?: number;
  batchSize?: number;
  /** Samples per onnxruntime run (memory vs speed); default scales with the input size (8 at 224x224). */
  microBatch?: number;
  optimizer?: OptimizerName;
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  labelSmoothing?: number;
  classWeights?: number[] | null;
  patience?: number;
  /** Which validation number picks the best epoch (and drives early stopping): val_loss (default) or val_acc. */
  monitor?: 'val_loss' | 'val_acc';
  schedule?: LrSchedule;
  seed?: number;
  threads?: number;
  /** Per-epoch image source for training (augmentation) when there is no decoded-image cache; default: plain decode. */
  trainDecode?: (epoch: number) => BatchOptions['decode'];
  /** Per-epoch augmentation of a decoded image (used with the decoded-image cache, instead of trainDecode). */
  trainAugment?: (epoch: number) => BatchOptions['augment'];
  /** Keep decoded training and validation images for later epochs (default: on, except with TLEARN_DECODER=legacy). */
  decodedCache?: boolean;
  logger?: Logger;
  label?: string;
}

export interface TrainedNetwork {
  artifacts: LayersModelArtifacts;
  history: EpochLog[];
  bestEpoch: number;
  stoppedEarly: boolean;
  trainableParams: number;
  failed: SkippedFile[];
  /** Seconds per epoch (train + validation), in order. */
  epochSeconds: number[];
  backend: string;
  options: {
    epochs: number;
    batchSize: number;
    microBatch: number;
    optimizer: OptimizerName;
    lr: number;
    momentum: number | null;
    weightDecay: number;
    labelSmoothing: number;
    schedule: LrSchedule;
    patience: number | null;
    monitor: 'val_loss' | 'val_acc';
    seed: number;
  };
  /** Class probabilities of the best weights for a set of images (e.g. the test split). */
  predict(src: BatchSource): Promise<{ probs: Float32Array; indices: number[]; failed: SkippedFile[] }>;
  close(): Promise<void>;
}

export function defaultMicroBatch(inputSize: [number, number]): number {
  return Math.max(1, Math.min(64, Math.floor((8 * 224 * 224) / (inputSize[0] * inputSize[1]))));
}

function scheduleScale(s: LrSchedule, step: number, total: number): number {
  const t = total > 1 ? step / (total - 1) : 0;
  if (s === 'cosine') return 0.5 * (1 + Math.cos(Math.PI * t));
  if (s === 'one-cycle') {
    // linear warm-up over the first 30% from 0.1x, then cosine down to ~0
    if (t < 0.3) return 0.1 + 0.9 * (t / 0.3);
    return 0.5 * (1 + Math.cos((Math.PI * (t - 0.3)) / 0.7));
  }
  return 1;
}

export async function trainNetwork(initial: LayersModelArtifacts, train: BatchSource, val: BatchSource, o: NetworkTrainOptions): Promise<TrainedNetwork> {
  const log = o.logger ?? silentLogger;
  const epochs = o.epochs ?? 10;
  const batchSize = o.batchSize ?? 128;
  const microBatch = Math.min(o.microBatch ?? defaultMicroBatch(o.inputSize), batchSize);
  const optimizer = o.optimizer ?? 'adam';
  const lr = o.lr ?? DEFAULT_LR[optimizer];
  const seed = o.seed ?? 42;
  const schedule = o.schedule ?? 'constant';
  const trainer = await OnnxTrainer.create(initial, {
    trainable: o.trainable,
    lrMultiplier: o.lrMultiplier,
    microBatch,
    optimizer,
    lr,
    momentum: o.momentum,
    weightDecay: o.weightDecay,
    labelSmoothing: o.labelSmoothing,
    classWeights: o.classWeights,
    seed,
    threads: o.threads,
  });
  const rng = new Rng(seed + 7);
  const cache = o.decodedCache !== false && decoderName() !== 'legacy' ? await DecodedImageCache.create() : undefined;
  const batchOpts = (decode?: BatchOptions['decode']): BatchOptions => ({ inputSize: o.inputSize, preprocessing: o.preprocessing, resize: o.resize, kernel: o.kernel, batchSize, decode });
  const trainOpts = (epoch: number): BatchOptions => {
    const augment = o.trainAugment?.(epoch);
    if (cache && (augment || !o.trainDecode)) return { ...batchOpts(), cache, augment };
    return batchOpts(o.trainDecode?.(epoch));
  };
  const failed = new Map<string, SkippedFile>();
  const history: EpochLog[] = [];
  const epochSeconds: number[] = [];
  let best = { loss: Infinity, epoch: 0, weights: trainer.snapshot() };
  let stale = 0;
  let stoppedEarly = false;
  const stepsPerEpoch = Math.ceil(train.paths.length / batchSize);
  const totalSteps = stepsPerEpoch * epochs;
  let step = 0;

  const evaluate = async (src: BatchSource, withCache = false): Promise<{ probs: Float32Array; indices: number[]; failed: SkippedFile[] }> => {
    const K = o.classes;
    const parts: Float32Array[] = [];
    const indices: number[] = [];
    const bad: SkippedFile[] = [];
    const order = src.paths.map((_, i) => i);
    for await (const b of imageBatches(src, order, { ...batchOpts(), batchSize: microBatch * 4, cache: withCache ? cache : undefined })) {
      bad.push(...b.failed);
      const px = o.inputSize[0] * o.inputSize[1] * 3;
      for (let s = 0; s < b.labels.length; s += microBatch) {
        const n = Math.min(microBatch, b.labels.length - s);
        parts.push(new Float32Array(await trainer.predict(b.x.subarray(s * px, (s + n) * px), n)));
      }
      indices.push(...b.indices);
    }
    const probs = new Float32Array(indices.length * K);
    let off = 0;
    for (const p of parts) {
      probs.set(p, off);
      off += p.length;
    }
    return { probs, indices, failed: bad };
  };

  try {
    for (let epoch = 1; epoch <= epochs; epoch++) {
      const t0 = performance.now();
      const order = rng.shuffle(train.paths.map((_, i) => i));
      const progress = log.progress(`${o.label ?? 'train'} epoch ${epoch}/${epochs}`, train.paths.length);
      let lossSum = 0;
      let correct = 0;
      let n = 0;
      for await (const b of imageBatches(train, order, trainOpts(epoch))) {
        for (const f of b.failed) failed.set(f.path, f);
        if (b.labels.length) {
          const r = await trainer.trainBatch(b.x, b.labels, scheduleScale(schedule, step, totalSteps));
          lossSum += r.lossSum;
          correct += r.correct;
          n += r.n;
        }
        step++;
        progress.tick(b.labels.length + b.failed.length);
      }
      progress.done();
      const v = await evaluate(val, true);
      for (const f of v.failed) failed.set(f.path, f);
      let vLoss = 0;
      let vCorrect = 0;
      v.indices.forEach((idx, k) => {
        const y = val.labels[idx]!;
        const row = v.probs.subarray(k * o.classes, (k + 1) * o.classes);
        vLoss -= Math.log(Math.max(row[y]!, 1e-15));
        let arg = 0;
        for (let c = 1; c < o.classes; c++) if (row[c]! > row[arg]!) arg = c;
        if (arg === y) vCorrect++;
      });
      const seconds = (performance.now() - t0) / 1000;
      epochSeconds.push(seconds);
      const entry: EpochLog = {
        epoch,
        loss: n ? lossSum / n : NaN,
        acc: n ? correct / n : NaN,
        val_loss: v.indices.length ? vLoss / v.indices.length : NaN,
        val_acc: v.indices.length ? vCorrect / v.indices.length : NaN,
        seconds,
        lr: lr * scheduleScale(schedule, Math.max(0, step - 1), totalSteps),
      };
      history.push(entry);
      log.info(`${o.label ? `[${o.label}] ` : ''}Epoch ${epoch}/${epochs} - ${seconds.toFixed(1)}s - loss: ${entry.loss.toFixed(4)} - acc: ${entry.acc.toFixed(4)} - val_loss: ${entry.val_loss.toFixed(4)} - val_acc: ${entry.val_acc.toFixed(4)}`);
      const monitored = o.monitor === 'val_acc' ? -(Number.isNaN(entry.val_acc) ? entry.acc : entry.val_acc) : Number.isNaN(entry.val_loss) ? entry.loss : entry.val_loss;
      if (monitored < best.loss) {
        best = { loss: monitored, epoch, weights: trainer.snapshot() };
        stale = 0;
        if (o.onBest) await o.onBest(trainer.exportArtifacts(best.weights), epoch);
      } else if (o.patience !== undefined && ++stale >= o.patience) {
        stoppedEarly = true;
        log.info(`early stopping: ${o.monitor ?? 'val_loss'} has not improved for ${o.patience} epoch${o.patience > 1 ? 's' : ''}`);
        break;
      }
    }
  } finally {
    // the decoded images are for the epochs; the final predictions decode what they need
    await cache?.close();
  }
  if (best.epoch !== history.length) log.info(`keeping the weights of epoch ${best.epoch} (${o.monitor === 'val_acc' ? `highest val_acc ${(-best.loss).toFixed(4)}` : `lowest val_loss ${best.loss.toFixed(4)}`})`);
  trainer.restore(best.weights);
  return {
    artifacts: trainer.exportArtifacts(),
    history,
    bestEpoch: best.epoch,
    stoppedEarly,
    trainableParams: trainer.paramCount,
    failed: [...failed.values()],
    epochSeconds,
    backend: `onnxruntime training graph (micro-batch ${microBatch})`,
    options: {
      epochs,
      batchSize,
      microBatch,
      optimizer,
      lr,
      momentum: optimizer === 'sgd' ? (o.momentum ?? 0.9) : null,
      weightDecay: o.weightDecay ?? 0,
      labelSmoothing: o.labelSmoothing ?? 0,
      schedule,
      patience: o.patience ?? null,
      monitor: o.monitor ?? 'val_loss',
      seed,
    },
    predict: evaluate,
    close: () => trainer.close(),
  };
}
