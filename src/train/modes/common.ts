/** What scratch training and fine-tuning pass alike from the run options to the network trainer. */
import { augmentRgb, augmentRng, decodeAugmented, describeAugment } from '../../image/augment.js';
import type { ResizeKernel, ResizeMode } from '../../image/decode.js';
import type { DatasetSplit } from '../../data/split.js';
import type { RunEvents } from '../../engine/events.js';
import { autoClassWeights } from '../../engine/fit.js';
import type { NetworkTrainOptions } from '../../engine/network.js';
import type { TrainRunOptions } from '../types.js';

export function sharedNetworkOptions(
  o: TrainRunOptions,
  split: DatasetSplit,
  classes: number,
  input: { inputSize: [number, number]; resize: ResizeMode; kernel: ResizeKernel },
  ev: RunEvents,
): Omit<NetworkTrainOptions, 'preprocessing' | 'trainable'> {
  const seed = o.seed ?? 42;
  const aug = o.augment;
  if (aug) ev.info(`augmentation: ${describeAugment(aug)}`);
  const decodeOpts = { width: input.inputSize[1], height: input.inputSize[0], resize: input.resize, kernel: input.kernel };
  return {
    classes,
    ...input,
    epochs: o.epochs,
    batchSize: o.batchSize,
    microBatch: o.microBatch,
    optimizer: o.optimizer,
    lr: o.lr,
    momentum: o.momentum,
    weightDecay: o.weightDecay,
    labelSmoothing: o.labelSmoothing,
    classWeights: o.classWeights === 'auto' ? autoClassWeights(Int32Array.from(split.train, (i) => i.label), classes) : null,
    patience: o.patience,
    monitor: o.monitor,
    schedule: o.schedule,
    warmupEpochs: o.warmup,
    ema: o.ema,
    swa: o.swa,
    mixup: o.mixup,
    cutmix: o.cutmix,
    batchNorm: {
      momentum: o.bnMomentum,
      reestimate: o.bnReestimate ? { images: typeof o.bnReestimate === 'number' ? o.bnReestimate : undefined } : undefined,
    },
    seed,
    threads: o.threads,
    progressive: o.progressive,
    trainDecode: aug ? (epoch, [height, width]) => (p, index) => decodeAugmented(p, { ...decodeOpts, width, height }, aug, augmentRng(seed, epoch, index)) : undefined,
    trainAugment: aug ? (epoch, [height, width]) => (img, index) => augmentRgb(img, { ...decodeOpts, width, height }, aug, augmentRng(seed, epoch, index)) : undefined,
    checkpoint: o.checkpoint,
    onEvent: (e) => ev.emit(e),
    signal: ev.signal,
  };
}
