/**
 * Training a whole network (from scratch, or a backbone's top for fine-tuning) on images with the onnxruntime
 * training engine: seeded shuffling each epoch, streamed batches, Keras-style epoch lines, validation each
 * epoch, the best epoch by validation loss kept, optional early stopping and learning-rate schedule. With a
 * checkpoint file, the whole loop state is written at the end of every epoch (and when a stop is requested,
 * e.g. Ctrl-C, after the current batch), and a resumed run continues exactly where it stopped: everything is
 * seeded, so it ends with the same weights and history as a run that was never stopped.
 */
import type { LayersModelArtifacts } from '../backbones/layers-model.js';
import type { PreprocessMode } from '../backbones/preprocess.js';
import type { ResizeKernel, ResizeMode } from '../data/decode.js';
import type { SkippedFile } from '../data/discover.js';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import { Rng } from '../util/rng.js';
import { InterruptedError, whileStoppable } from '../util/interrupt.js';
import { sha256 } from '../util/hash.js';
import { loadLoopState, saveLoopState, trainingFingerprint, type CheckpointPart, type LoopState } from './network-state.js';
import type { EpochLog } from './fit.js';
import { imageBatches, type BatchOptions, type BatchSource } from './image-batches.js';
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
  /** Per-epoch image source for training (augmentation); default: plain decode. */
  trainDecode?: (epoch: number) => BatchOptions['decode'];
  logger?: Logger;
  label?: string;
  /** Checkpoint the loop state to this file at the end of every epoch (and on a requested stop). */
  checkpoint?: NetworkCheckpointOptions;
}

export interface NetworkCheckpointOptions {
  file: string;
  /** Continue from the file when it holds a checkpoint (default: start anew and overwrite it). */
  resume?: boolean;
  /** More state to save and restore with the loop's (e.g. averaged weights). */
  parts?: CheckpointPart[];
}

export type { CheckpointPart };

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

function epochLine(label: string | undefined, e: EpochLog, epochs: number): string {
  return `${label ? `[${label}] ` : ''}Epoch ${e.epoch}/${epochs} - ${e.seconds.toFixed(1)}s - loss: ${e.loss.toFixed(4)} - acc: ${e.acc.toFixed(4)} - val_loss: ${e.val_loss.toFixed(4)} - val_acc: ${e.val_acc.toFixed(4)}`;
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
  const batchOpts = (decode?: BatchOptions['decode']): BatchOptions => ({ inputSize: o.inputSize, preprocessing: o.preprocessing, resize: o.resize, kernel: o.kernel, batchSize, decode });
  const stepsPerEpoch = Math.ceil(train.paths.length / batchSize);
  const totalSteps = stepsPerEpoch * epochs;
  const fresh = (): LoopState => ({ epoch: 0, batch: 0, step: 0, partial: { lossSum: 0, correct: 0, n: 0, seconds: 0 }, shuffleRng: rng.getState(), best: { loss: Infinity, epoch: 0, weights: trainer.snapshot() }, stale: 0, stoppedEarly: false, history: [], epochSeconds: [], failed: [] });
  const ck = o.checkpoint;
  const fingerprint = ck
    ? trainingFingerprint(trainer, {
        data: sha256(JSON.stringify([train.paths, Array.from(train.labels), val.paths, Array.from(val.labels)])),
        o: [o.classes, o.inputSize, o.preprocessing, o.resize, o.kernel ?? 'linear', epochs, batchSize, microBatch, optimizer, lr, o.momentum ?? null, o.weightDecay ?? 0, o.labelSmoothing ?? 0, o.classWeights ?? null, o.patience ?? null, o.monitor ?? 'val_loss', schedule, seed, Boolean(o.trainDecode)],
      })
    : '';
  let st = fresh();
  if (ck?.resume) {
    const loaded = await loadLoopState(ck.file, fingerprint, trainer, ck.parts);
    if (loaded) {
      st = loaded;
      const where = st.batch ? `epoch ${st.epoch + 1}, batch ${st.batch}/${stepsPerEpoch}` : `the end of epoch ${st.epoch}`;
      log.info(`${o.label ? `[${o.label}] ` : ''}resuming from the checkpoint at ${where} (${ck.file})`);
      for (const h of st.history) log.info(epochLine(o.label, h, epochs));
    } else log.info(`${o.label ? `[${o.label}] ` : ''}no checkpoint yet in ${ck.file}: training from the first epoch`);
  }
  rng.setState(st.shuffleRng);
  const failed = new Map<string, SkippedFile>(st.failed.map((f) => [f.path, f]));
  const save = async () => {
    if (!ck) return;
    st.failed = [...failed.values()];
    await saveLoopState(ck.file, fingerprint, trainer, st, ck.parts);
  };
  let stopSignal: 'SIGINT' | 'SIGTERM' | undefined;
  const stopped = async (): Promise<never> => {
    await save();
    const where = st.batch ? `epoch ${st.epoch + 1}, batch ${st.batch}/${stepsPerEpoch}` : `the end of epoch ${st.epoch}`;
    throw new InterruptedError(ck ? `stopped; checkpoint written at ${where} (${ck.file})` : 'stopped', stopSignal);
  };

  const evaluate = async (src: BatchSource): Promise<{ probs: Float32Array; indices: number[]; failed: SkippedFile[] }> => {
    const K = o.classes;
    const parts: Float32Array[] = [];
    const indices: number[] = [];
    const bad: SkippedFile[] = [];
    const order = src.paths.map((_, i) => i);
    for await (const b of imageBatches(src, order, { ...batchOpts(), batchSize: microBatch * 4 })) {
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

  const loop = async () => {
    while (st.epoch < epochs && !st.stoppedEarly) {
      const epoch = st.epoch + 1;
      const t0 = performance.now();
      // the order is drawn from the generator's state at the epoch's start, so a resumed epoch draws the same
      const order = rng.shuffle(train.paths.map((_, i) => i));
      const progress = log.progress(`${o.label ?? 'train'} epoch ${epoch}/${epochs}`, train.paths.length);
      progress.tick(Math.min(train.paths.length, st.batch * batchSize));
      for await (const b of imageBatches(train, order.slice(st.batch * batchSize), batchOpts(o.trainDecode?.(epoch)))) {
        for (const f of b.failed) failed.set(f.path, f);
        if (b.labels.length) {
          const r = await trainer.trainBatch(b.x, b.labels, scheduleScale(schedule, st.step, totalSteps));
          st.partial.lossSum += r.lossSum;
          st.partial.correct += r.correct;
          st.partial.n += r.n;
        }
        st.step++;
        st.batch++;
        progress.tick(b.labels.length + b.failed.length);
        if (stopSignal) {
          progress.done();
          st.partial.seconds += (performance.now() - t0) / 1000;
          await stopped();
        }
      }
      progress.done();
      const v = await evaluate(val);
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
      const seconds = st.partial.seconds + (performance.now() - t0) / 1000;
      const { lossSum, correct, n } = st.partial;
      const entry: EpochLog = {
        epoch,
        loss: n ? lossSum / n : NaN,
        acc: n ? correct / n : NaN,
        val_loss: v.indices.length ? vLoss / v.indices.length : NaN,
        val_acc: v.indices.length ? vCorrect / v.indices.length : NaN,
        seconds,
        lr: lr * scheduleScale(schedule, Math.max(0, st.step - 1), totalSteps),
      };
      st.history.push(entry);
      st.epochSeconds.push(seconds);
      log.info(epochLine(o.label, entry, epochs));
      st.epoch = epoch;
      st.batch = 0;
      st.partial = { lossSum: 0, correct: 0, n: 0, seconds: 0 };
      st.shuffleRng = rng.getState();
      const monitored = o.monitor === 'val_acc' ? -(Number.isNaN(entry.val_acc) ? entry.acc : entry.val_acc) : Number.isNaN(entry.val_loss) ? entry.loss : entry.val_loss;
      if (monitored < st.best.loss) {
        st.best = { loss: monitored, epoch, weights: trainer.snapshot() };
        st.stale = 0;
        if (o.onBest) await o.onBest(trainer.exportArtifacts(st.best.weights), epoch);
      } else if (o.patience !== undefined && ++st.stale >= o.patience) {
        st.stoppedEarly = true;
        log.info(`early stopping: ${o.monitor ?? 'val_loss'} has not improved for ${o.patience} epoch${o.patience > 1 ? 's' : ''}`);
      }
      await save();
      if (ck) log.info(`  checkpoint: epoch ${epoch} (${ck.file})`);
      if (stopSignal) await stopped();
    }
  };
  try {
    await whileStoppable((signal) => (stopSignal = signal), loop);
  } catch (e) {
    await trainer.close();
    throw e;
  }
  const { best, history, epochSeconds, stoppedEarly } = st;
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
