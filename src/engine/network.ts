/**
 * Training a whole network (from scratch, or a backbone's top for fine-tuning) on images with the onnxruntime
 * training engine: seeded shuffling each epoch, streamed batches, Keras-style epoch lines, validation each
 * epoch, the best epoch by validation loss kept, optional early stopping and learning-rate schedule. With a
 * checkpoint file, the whole loop state (the recipe's EMA/SWA/mixing state included) is written at the end of
 * every epoch (and when a stop is requested, e.g. Ctrl-C, after the current batch), and a resumed run continues
 * exactly where it stopped: everything is seeded, so it ends with the same weights and history as a run that was
 * never stopped.
 */
import type { LayersModelArtifacts } from '../backbones/layers-model.js';
import type { PreprocessMode } from '../backbones/preprocess.js';
import type { ResizeKernel, ResizeMode } from '../image/decode.js';
import type { SkippedFile } from '../data/discover.js';
import type { Logger } from '../util/log.js';
import { Rng } from '../util/rng.js';
import { InterruptedError, stopSignalName, whileStoppable } from '../util/interrupt.js';
import { RunEvents, type TrainingListener } from './events.js';
import { eventListener } from './event-render.js';
import { sha256 } from '../util/hash.js';
import type { EpochLog } from './fit.js';
import { loadLoopState, saveLoopState, trainingFingerprint, type CheckpointPart, type LoopState } from './network-state.js';
import { imageBatches, type BatchOptions, type BatchSource } from './image-batches.js';
import { DecodedImageCache } from '../image/decoded-cache.js';
import { OnnxTrainer } from './onnx-trainer.js';
import { DEFAULT_LR, type OptimizerName } from './optimizers.js';
import { checkRecipe, RecipeError, TrainingRecipe, type RecipeOptions } from './recipe.js';
import type { SwaState } from './averaging.js';

export type LrSchedule = 'constant' | 'cosine' | 'one-cycle';

/** BatchNormalization in the network trainer (layers whose gamma/beta are trained always use batch statistics). */
export interface BatchNormOptions {
  /** Momentum of the moving statistics of trained layers (default: each layer's own). */
  momentum?: number;
  /**
   * After training (and after SWA), re-estimate the moving statistics on the training images (plain decode, no
   * augmentation): of the trained layers and of `layers` (e.g. frozen layers after trained convolutions).
   */
  reestimate?: { layers?: (layer: string) => boolean; images?: number };
}

export interface NetworkTrainOptions extends RecipeOptions {
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
  /** Linear learning-rate warm-up over the first epochs (from 1/steps to 1), then the schedule over the rest. */
  warmupEpochs?: number;
  batchNorm?: BatchNormOptions;
  seed?: number;
  threads?: number;
  /** Per-epoch image source for training (augmentation) at the epoch's training size when there is no decoded-image cache; default: plain decode. */
  trainDecode?: (epoch: number, size: [number, number]) => BatchOptions['decode'];
  /** Per-epoch augmentation of a decoded image at the epoch's training size (with the decoded-image cache, instead of trainDecode). */
  trainAugment?: (epoch: number, size: [number, number]) => BatchOptions['augment'];
  /** Keep decoded training and validation images for later epochs (default: on). */
  decodedCache?: boolean;
  /**
   * Progressive resizing: train the first epochs at these (smaller) sizes in turn, then at inputSize, the epochs
   * split evenly between the stages. Validation, re-estimation and the result are always at inputSize.
   */
  progressive?: Array<[number, number]>;
  /** Draws the training on this logger when there is no `onEvent`. */
  logger?: Logger;
  /** The training events: 'batch' progress, 'epoch' (phase 'network'), 'checkpoint', 'log' lines. */
  onEvent?: TrainingListener;
  /** Stops after the current batch: the checkpoint is written (when there is one), then InterruptedError. */
  signal?: AbortSignal;
  /** Put on the events and the epoch lines ('scratch', 'fine-tune'). */
  label?: string;
  /** Checkpoint the loop state to this file at the end of every epoch (and on a requested stop). */
  checkpoint?: NetworkCheckpointOptions;
}

export interface NetworkCheckpointOptions {
  file: string;
  /** Continue from the file when it holds a checkpoint (default: start anew and overwrite it). */
  resume?: boolean;
  /** More state to save and restore with the loop's (the recipe's is saved already). */
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
    warmupEpochs: number;
    progressive: Array<[number, number]> | null;
    patience: number | null;
    monitor: 'val_loss' | 'val_acc';
    seed: number;
    mixup: number;
    cutmix: number;
    ema: number | null;
    swa: number | null;
    bnMomentum: number | null;
    bnReestimate: boolean;
  };
  /** What the recipe did after training: SWA kept or not, BatchNormalization statistics re-estimated. */
  recipe: {
    swa?: { epochs: number; val_loss: number; val_acc: number; kept: boolean };
    bnReestimated?: { layers: number; images: number };
    /** The training-mode BatchNormalization layers (batch statistics). */
    bnTrained: string[];
  };
  /** Class probabilities of the best weights for a set of images (e.g. the test split). */
  predict(src: BatchSource): Promise<{ probs: Float32Array; indices: number[]; failed: SkippedFile[] }>;
  close(): Promise<void>;
}

export function defaultMicroBatch(inputSize: [number, number]): number {
  return Math.max(1, Math.min(64, Math.floor((8 * 224 * 224) / (inputSize[0] * inputSize[1]))));
}

/** The learning-rate multiplier at `step` of `total`: a linear warm-up over `warmup` steps, then the schedule. */
export function scheduleScale(s: LrSchedule, step: number, total: number, warmup = 0): number {
  if (step < warmup) return (step + 1) / warmup;
  step -= warmup;
  total -= warmup;
  const t = total > 1 ? step / (total - 1) : 0;
  if (s === 'cosine') return 0.5 * (1 + Math.cos(Math.PI * t));
  if (s === 'one-cycle') {
    // linear warm-up over the first 30% from 0.1x, then cosine down to ~0
    if (t < 0.3) return 0.1 + 0.9 * (t / 0.3);
    return 0.5 * (1 + Math.cos((Math.PI * (t - 0.3)) / 0.7));
  }
  return 1;
}

/**
 * Refuses recipe options that cannot work together, with the flags' names (RecipeError). trainNetwork calls it;
 * a run calls it too before any work, with the mode's defaults.
 */
export function checkNetworkOptions(o: Pick<NetworkTrainOptions, 'epochs' | 'schedule' | 'warmupEpochs' | 'batchNorm' | 'progressive' | keyof RecipeOptions>): void {
  const epochs = o.epochs ?? 10;
  const warmupEpochs = o.warmupEpochs ?? 0;
  if (!(Number.isInteger(warmupEpochs) && warmupEpochs >= 0 && warmupEpochs < epochs)) throw new RecipeError(`--warmup must be a whole number of epochs in 0..${epochs - 1}, got ${warmupEpochs}`);
  if (warmupEpochs && (o.schedule ?? 'constant') === 'one-cycle') throw new RecipeError('--warmup does not combine with the one-cycle schedule, which warms up on its own; use --schedule cosine or constant');
  const bnMomentum = o.batchNorm?.momentum;
  if (bnMomentum !== undefined && !(bnMomentum >= 0 && bnMomentum < 1)) throw new RecipeError(`--bn-momentum must be in [0, 1), got ${bnMomentum}`);
  const images = o.batchNorm?.reestimate?.images;
  if (images !== undefined && !(Number.isInteger(images) && images >= 1)) throw new RecipeError(`--bn-reestimate takes a number of images >= 1, got ${images}`);
  const stages = (o.progressive?.length ?? 0) + 1;
  if (stages > epochs) throw new RecipeError(`--progressive: ${stages} sizes (with the model's own) need at least ${stages} epochs, got ${epochs}`);
  checkRecipe(o, epochs);
}

export async function trainNetwork(initial: LayersModelArtifacts, train: BatchSource, val: BatchSource, o: NetworkTrainOptions): Promise<TrainedNetwork> {
  const events = new RunEvents(eventListener(o), o.signal, o.label);
  const log = events.logger();
  const epochs = o.epochs ?? 10;
  const batchSize = o.batchSize ?? 128;
  const microBatch = Math.min(o.microBatch ?? defaultMicroBatch(o.inputSize), batchSize);
  const optimizer = o.optimizer ?? 'adam';
  const lr = o.lr ?? DEFAULT_LR[optimizer];
  const seed = o.seed ?? 42;
  const schedule = o.schedule ?? 'constant';
  const warmupEpochs = o.warmupEpochs ?? 0;
  checkNetworkOptions(o);
  const bnMomentum = o.batchNorm?.momentum;
  const reestimate = o.batchNorm?.reestimate;
  const stages = [...(o.progressive ?? []), o.inputSize];
  const sizeAt = (epoch: number) => stages[Math.min(stages.length - 1, Math.floor(((epoch - 1) * stages.length) / epochs))]!;
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
    bnMomentum,
    bnLive: reestimate?.layers,
  });
  let recipe = TrainingRecipe.start(o, epochs, seed, trainer.liveWeights);
  const bnTrained = trainer.trainingModeBatchNorm;
  if (bnTrained.length) log.info(`BatchNormalization in training mode (batch statistics per micro-batch of ${microBatch}, moving statistics with momentum ${bnMomentum ?? "each layer's own"}): ${bnTrained.length} layer${bnTrained.length > 1 ? 's' : ''}`);
  for (const line of recipe.describe()) log.info(`recipe: ${line}`);
  const rng = new Rng(seed + 7);
  // each training and validation image decoded once per run; later epochs start from the kept pixels
  const cache = o.decodedCache !== false ? await DecodedImageCache.create() : undefined;
  const batchOpts = (decode?: BatchOptions['decode'], inputSize = o.inputSize): BatchOptions => ({ inputSize, preprocessing: o.preprocessing, resize: o.resize, kernel: o.kernel, batchSize, decode });
  const trainOpts = (epoch: number, size: [number, number]): BatchOptions => {
    const augment = o.trainAugment?.(epoch, size);
    if (cache && (augment || !o.trainDecode)) return { ...batchOpts(undefined, size), cache, augment };
    return batchOpts(o.trainDecode?.(epoch, size), size);
  };
  const stepsPerEpoch = Math.ceil(train.paths.length / batchSize);
  const totalSteps = stepsPerEpoch * epochs;
  const warmupSteps = stepsPerEpoch * warmupEpochs;
  const fresh = (): LoopState => ({ epoch: 0, batch: 0, step: 0, partial: { lossSum: 0, correct: 0, n: 0, seconds: 0 }, shuffleRng: rng.getState(), best: { loss: Infinity, epoch: 0, weights: trainer.snapshot() }, stale: 0, stoppedEarly: false, history: [], epochSeconds: [], failed: [] });
  const ck = o.checkpoint;
  // the recipe's state (mixing generator, EMA or SWA sums) is a named part of the checkpoint
  const recipePart: CheckpointPart = {
    name: 'recipe',
    save: () => {
      const r = recipe.state();
      return { meta: { mixRng: r.mixRng, ema: r.ema && { decay: r.ema.decay, updates: r.ema.updates }, swa: r.swa && { count: r.swa.count } }, tensors: [...(r.ema?.weights ?? []), ...(r.swa?.sum ?? [])] };
    },
    load: ({ meta, tensors }) => {
      const m = meta as { mixRng: number; ema: { decay: number; updates: number } | null; swa: { count: number } | null };
      const n = m.ema ? trainer.liveWeights.length : 0;
      recipe = TrainingRecipe.fromState(o, epochs, {
        mixRng: m.mixRng,
        ema: m.ema && { ...m.ema, weights: tensors.slice(0, n) as Float32Array[] },
        swa: m.swa && ({ count: m.swa.count, sum: tensors.slice(n) as Float64Array[] } satisfies SwaState),
      });
    },
  };
  const parts = [recipePart, ...(ck?.parts ?? [])];
  const fingerprint = ck
    ? trainingFingerprint(trainer, {
        data: sha256(JSON.stringify([train.paths, Array.from(train.labels), val.paths, Array.from(val.labels)])),
        o: [o.classes, o.inputSize, o.preprocessing, o.resize, o.kernel ?? 'linear', epochs, batchSize, microBatch, optimizer, lr, o.momentum ?? null, o.weightDecay ?? 0, o.labelSmoothing ?? 0, o.classWeights ?? null, o.patience ?? null, o.monitor ?? 'val_loss', schedule, warmupEpochs, o.progressive ?? null, bnMomentum ?? null, reestimate?.images ?? null, o.mixup ?? 0, o.cutmix ?? 0, o.ema ?? null, o.swa ?? null, seed, Boolean(o.trainDecode)],
      })
    : '';
  let st = fresh();
  if (ck?.resume) {
    const loaded = await loadLoopState(ck.file, fingerprint, trainer, parts);
    if (loaded) {
      st = loaded;
      const where = st.batch ? `epoch ${st.epoch + 1}, batch ${st.batch}/${stepsPerEpoch}` : `the end of epoch ${st.epoch}`;
      log.info(`${o.label ? `[${o.label}] ` : ''}resuming from the checkpoint at ${where} (${ck.file})`);
      for (const h of st.history) events.emit({ type: 'epoch', phase: 'network', epochs, log: h, resumed: true });
    } else log.info(`${o.label ? `[${o.label}] ` : ''}no checkpoint yet in ${ck.file}: training from the first epoch`);
  }
  rng.setState(st.shuffleRng);
  const failed = new Map<string, SkippedFile>(st.failed.map((f) => [f.path, f]));
  const save = async () => {
    if (!ck) return;
    st.failed = [...failed.values()];
    await saveLoopState(ck.file, fingerprint, trainer, st, parts);
    events.emit({ type: 'checkpoint', epoch: st.batch ? st.epoch + 1 : st.epoch, path: ck.file, ...(st.batch ? { batch: st.batch, batches: stepsPerEpoch } : {}) });
  };
  let stopSignal: 'SIGINT' | 'SIGTERM' | undefined;
  const stopped = async (): Promise<never> => {
    await save();
    const where = st.batch ? `epoch ${st.epoch + 1}, batch ${st.batch}/${stepsPerEpoch}` : `the end of epoch ${st.epoch}`;
    throw new InterruptedError(ck ? `stopped; checkpoint written at ${where} (${ck.file})` : 'stopped', stopSignal);
  };
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
  /** Runs fn with these weights in the trainer, then puts the trainer's own back. */
  const withWeights = async <T>(weights: Float32Array[] | undefined, fn: () => Promise<T>): Promise<T> => {
    if (!weights) return fn();
    const own = trainer.snapshot();
    trainer.restore(weights);
    try {
      return await fn();
    } finally {
      trainer.restore(own);
    }
  };
  const validate = async (): Promise<{ loss: number; acc: number }> => {
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
    return { loss: v.indices.length ? vLoss / v.indices.length : NaN, acc: v.indices.length ? vCorrect / v.indices.length : NaN };
  };
  const monitorValue = (e: { loss: number; acc: number; val_loss: number; val_acc: number }) =>
    o.monitor === 'val_acc' ? -(Number.isNaN(e.val_acc) ? e.acc : e.val_acc) : Number.isNaN(e.val_loss) ? e.loss : e.val_loss;
  const reestimateStatistics = async (images?: number) => {
    if (!trainer.batchNormLayers.length) {
      log.warn('--bn-reestimate: the trained part of this model has no BatchNormalization layers; nothing to re-estimate');
      return { layers: 0, images: 0 };
    }
    const order = rng.shuffle(train.paths.map((_, i) => i)).slice(0, images ?? train.paths.length);
    const progress = log.progress('re-estimating BatchNormalization statistics', order.length);
    async function* batches() {
      for await (const b of imageBatches(train, order, { ...batchOpts(), batchSize: microBatch * 4 })) {
        progress.tick(b.labels.length + b.failed.length);
        yield { x: b.x, n: b.labels.length };
      }
    }
    const r = await trainer.reestimateBatchNorm(batches());
    progress.done();
    log.info(`re-estimated the moving statistics of ${r.layers} BatchNormalization layer${r.layers === 1 ? '' : 's'} on ${r.images} training images`);
    return r;
  };

  const loop = async () => {
    while (st.epoch < epochs && !st.stoppedEarly) {
      if (stopSignal) await stopped();
      const epoch = st.epoch + 1;
      const t0 = performance.now();
      // the order is drawn from the generator's state at the epoch's start, so a resumed epoch draws the same
      const order = rng.shuffle(train.paths.map((_, i) => i));
      const size = sizeAt(epoch);
      if (o.progressive && (epoch === 1 || size !== sizeAt(epoch - 1))) log.info(`progressive resizing: training at ${size.join('x')} from epoch ${epoch}`);
      await trainer.setTrainSize(size);
      let seen = Math.min(train.paths.length, st.batch * batchSize);
      const progress = { tick: (k: number) => events.emit({ type: 'batch', epoch, epochs, done: (seen += k), total: train.paths.length }), done: () => {} };
      progress.tick(0);
      for await (const b of imageBatches(train, order.slice(st.batch * batchSize), trainOpts(epoch, size))) {
        for (const f of b.failed) failed.set(f.path, f);
        if (b.labels.length) {
          const batch = recipe.prepare(b.x, b.labels, size);
          const r = await trainer.trainBatch(batch.x, b.labels, scheduleScale(schedule, st.step, totalSteps, warmupSteps), batch.mixed);
          recipe.afterStep(trainer.liveWeights);
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
      recipe.afterEpoch(epoch, trainer.liveWeights);
      const v = await withWeights(recipe.evalWeights(), validate);
      const seconds = st.partial.seconds + (performance.now() - t0) / 1000;
      const { lossSum, correct, n } = st.partial;
      const entry: EpochLog = {
        epoch,
        loss: n ? lossSum / n : NaN,
        acc: n ? correct / n : NaN,
        val_loss: v.loss,
        val_acc: v.acc,
        seconds,
        lr: lr * scheduleScale(schedule, Math.max(0, st.step - 1), totalSteps, warmupSteps),
      };
      st.history.push(entry);
      st.epochSeconds.push(seconds);
      events.emit({ type: 'epoch', phase: 'network', epochs, log: entry });
      st.epoch = epoch;
      st.batch = 0;
      st.partial = { lossSum: 0, correct: 0, n: 0, seconds: 0 };
      st.shuffleRng = rng.getState();
      const monitored = monitorValue(entry);
      if (monitored < st.best.loss) {
        st.best = { loss: monitored, epoch, weights: recipe.evalWeights()?.map((w) => new Float32Array(w)) ?? trainer.snapshot() };
        st.stale = 0;
        if (o.onBest) await o.onBest(trainer.exportArtifacts(st.best.weights), epoch);
      } else if (o.patience !== undefined && ++st.stale >= o.patience) {
        st.stoppedEarly = true;
        log.info(`early stopping: ${o.monitor ?? 'val_loss'} has not improved for ${o.patience} epoch${o.patience > 1 ? 's' : ''}`);
      }
      await save();
      if (stopSignal) await stopped();
    }
  };
  const onAbort = () => (stopSignal = stopSignalName(o.signal!));
  if (o.signal?.aborted) onAbort();
  else o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await whileStoppable((signal) => (stopSignal = signal), loop);
  } catch (e) {
    await cache?.close();
    await trainer.close();
    throw e;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
  const { best, history, epochSeconds, stoppedEarly } = st;
  const describeBest = () => (o.monitor === 'val_acc' ? `highest val_acc ${(-best.loss).toFixed(4)}` : `lowest val_loss ${best.loss.toFixed(4)}`);
  if (best.epoch !== history.length) log.info(`keeping the weights of epoch ${best.epoch} (${describeBest()})`);
  trainer.restore(best.weights);
  const done: TrainedNetwork['recipe'] = { bnTrained };
  if (recipe.swa?.count) {
    // the averaged weights, with BatchNormalization statistics measured for them, if they validate better
    trainer.restore(recipe.swa.average());
    if (trainer.batchNormLayers.length) done.bnReestimated = await reestimateStatistics(reestimate?.images);
    const v = await validate();
    const kept = monitorValue({ loss: NaN, acc: NaN, val_loss: v.loss, val_acc: v.acc }) <= best.loss;
    done.swa = { epochs: recipe.swa.count, val_loss: v.loss, val_acc: v.acc, kept };
    log.info(`SWA of the last ${recipe.swa.count} epochs: val_loss ${v.loss.toFixed(4)}, val_acc ${v.acc.toFixed(4)}; ${kept ? 'kept' : `not kept (epoch ${best.epoch} has the ${describeBest()})`}`);
    if (!kept) {
      trainer.restore(best.weights);
      delete done.bnReestimated;
    }
  }
  if (reestimate && !done.bnReestimated) done.bnReestimated = await reestimateStatistics(reestimate.images);
  // the decoded images served the epochs and validation; final predictions decode what they need
  await cache?.close();
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
      warmupEpochs,
      progressive: o.progressive ?? null,
      patience: o.patience ?? null,
      monitor: o.monitor ?? 'val_loss',
      seed,
      mixup: o.mixup ?? 0,
      cutmix: o.cutmix ?? 0,
      ema: o.ema ?? null,
      swa: o.swa ?? null,
      bnMomentum: bnMomentum ?? null,
      bnReestimate: Boolean(reestimate),
    },
    recipe: done,
    predict: evaluate,
    close: () => trainer.close(),
  };
}
