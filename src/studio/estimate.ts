/**
 * A rough training-time estimate from the number of images, the backbone and the mode, from the numbers in
 * BENCHMARKS.md (2 CPU cores, MobileNetV2-0.35 at 224x224):
 * - feature extraction, cold: about 300 images/s (370 measured from JPEG files; decoding ~1.1 core-ms/image);
 * - the head on cached features: 40 epochs of 4,348 images in about 12 s, so ~0.07 ms per image and epoch;
 * - a fine-tuning epoch (top 8 blocks, augmented): about 59 s for 4,348 + 931 images, so ~11 ms per image.
 * Other backbones scale with their multiply-adds per image (published figures at 224x224). It is an estimate:
 * a busy machine, a cold disk or a bigger image is slower, and images seen before (the features cache) are faster.
 */
import { findZooEntry } from '../backbones/zoo.js';

/** Multiply-adds per 224x224 image, millions (Keras applications' published figures). */
const MEGA_MACS: Record<string, number> = {
  'mobilenet_v2_0.35': 59,
  'mobilenet_v2_0.50': 97,
  'mobilenet_v2_0.75': 209,
  'mobilenet_v2_1.00': 300,
  'mobilenet_v2_1.30': 509,
  'mobilenet_v2_1.40': 582,
  vgg16: 15_470,
  vgg16_notop: 15_350,
  resnet50: 4_100,
};
const BASE_MACS = MEGA_MACS['mobilenet_v2_0.35']!;

/** Seconds per image of feature extraction: decoding (fixed) plus the network (scales with the backbone). */
const DECODE_S = 0.0012;
const NETWORK_S = 0.0021;
/** Seconds per image and head epoch on cached features. */
const HEAD_EPOCH_S = 0.00007;
/** Seconds per image and fine-tuning epoch (forward and backward of the top, augmented decoding). */
const FINETUNE_EPOCH_S = 0.0112;
/** Starting up: loading the backbone, the data check, writing the run folder. */
const OVERHEAD_S = 4;

export const TRANSFER_DEFAULT_EPOCHS = 40;
export const FINETUNE_DEFAULT_EPOCHS = 10;
export const FINETUNE_HEAD_EPOCHS = 3;

/** How much slower than MobileNetV2-0.35 a backbone is (1 for an unknown local one). */
export function relativeCost(backbone: string): number {
  const entry = findZooEntry(backbone);
  const macs = entry ? MEGA_MACS[entry.name] : undefined;
  return macs ? macs / BASE_MACS : 1;
}

/** Images per second of feature extraction for a backbone (cold cache). */
export function extractionRate(backbone: string): number {
  return 1 / (DECODE_S + NETWORK_S * relativeCost(backbone));
}

export interface EstimateInput {
  mode: 'transfer' | 'finetune';
  backbone: string;
  /** Images in the project (train, validation and test together). */
  images: number;
  epochs?: number;
}

export interface Estimate {
  seconds: number;
  /** Each part in seconds, for the page to explain. */
  parts: { extraction: number; training: number; overhead: number };
  /** A sentence in plain words, saying it is an estimate. */
  text: string;
}

export function formatDuration(s: number): string {
  if (s < 60) return `${Math.max(1, Math.round(s))} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  const h = Math.floor(s / 3600);
  return `${h} h ${Math.round((s - h * 3600) / 60)} min`;
}

export function estimateTraining(i: EstimateInput): Estimate {
  const n = Math.max(0, i.images);
  const cost = relativeCost(i.backbone);
  const extraction = n * (DECODE_S + NETWORK_S * cost);
  let training: number;
  if (i.mode === 'transfer') training = n * 0.85 * HEAD_EPOCH_S * (i.epochs ?? TRANSFER_DEFAULT_EPOCHS);
  else training = n * 0.85 * (HEAD_EPOCH_S * FINETUNE_HEAD_EPOCHS + FINETUNE_EPOCH_S * Math.max(1, cost / 2) * (i.epochs ?? FINETUNE_DEFAULT_EPOCHS));
  const seconds = OVERHEAD_S + extraction + training;
  const text = `About ${formatDuration(seconds)} on a 2-core computer (an estimate: less when these images were used before, more when the computer is busy).`;
  return { seconds, parts: { extraction, training, overhead: OVERHEAD_S }, text };
}
