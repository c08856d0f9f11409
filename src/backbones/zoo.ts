/**
 * The backbone zoo: where each pretrained network's weights are published, how to feed it and where to cut it.
 * Teachable Machine serves Keras' MobileNetV2 ImageNet weights as TF.js layers models; no hash is published
 * for them, so tlearn records one at first download and checks it on every later load.
 */
import type { ResizeMode } from '../data/decode.js';
import type { PreprocessMode } from './preprocess.js';

export interface PublishedHash {
  algorithm: 'sha256' | 'md5';
  value: string;
}

export interface ZooEntry {
  name: string;
  description: string;
  format: 'tfjs-layers';
  /** model.json URL; weight shards are fetched relative to it. */
  url: string;
  /** The publisher's hash of the main file, where one is published. */
  hash?: PublishedHash;
  inputSize: [number, number];
  preprocessing: PreprocessMode;
  resize: ResizeMode;
  /** Layer whose output is the feature map, pooled with `pooling`. */
  cutAt: string;
  pooling: 'avg' | 'max';
  featureDim: number;
}

const TM_BASE = 'https://storage.googleapis.com/teachable-machine-models';

function tmMobileNetV2(alpha: string): ZooEntry {
  return {
    name: `mobilenet_v2_${alpha}`,
    description: `MobileNetV2 width ${alpha}, 224x224, ImageNet (Keras weights, as served for Teachable Machine)`,
    format: 'tfjs-layers',
    url: `${TM_BASE}/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_${Number(alpha).toFixed(2)}_224_no_top/model.json`,
    inputSize: [224, 224],
    preprocessing: 'tf',
    resize: 'squash',
    cutAt: 'out_relu',
    pooling: 'avg',
    featureDim: 1280,
  };
}

export const ZOO: ZooEntry[] = [
  tmMobileNetV2('0.35'),
  tmMobileNetV2('0.50'),
  tmMobileNetV2('0.75'),
  tmMobileNetV2('1.00'),
];

export const DEFAULT_BACKBONE = 'mobilenet_v2_0.35';

/** Accepts 'mobilenet_v2_0.35', 'mobilenet_v2_0.5', 'mobilenet_v2_1' etc. */
export function findZooEntry(name: string): ZooEntry | undefined {
  const n = name.trim().toLowerCase();
  const direct = ZOO.find((e) => e.name === n);
  if (direct) return direct;
  const m = /^mobilenet_?v2_?([0-9.]+)$/.exec(n);
  if (m) {
    const alpha = Number(m[1]).toFixed(2);
    return ZOO.find((e) => e.name === `mobilenet_v2_${alpha}`) ?? ZOO.find((e) => e.name === `mobilenet_v2_${Number(m[1])}`);
  }
  return undefined;
}

/** Applies $TLEARN_MIRROR (a base URL that replaces https://storage.googleapis.com) for mirrors and tests. */
export function resolveUrl(url: string): string {
  const mirror = process.env.TLEARN_MIRROR;
  if (!mirror) return url;
  return url.replace(/^https:\/\/storage\.googleapis\.com/, mirror.replace(/\/$/, ''));
}
