/**
 * The backbone zoo: Keras applications with Keras' own ImageNet weights, where they are published and the
 * hash Keras checks them against (keras/src/applications/*.py), how to feed each network and where to cut it.
 * Keras publishes no hash for the MobileNetV2 and MobileNet (v1) files (mobilenet_v2.py and mobilenet.py call
 * get_file without file_hash; no published hash was found elsewhere either): tlearn records one at the first
 * download and checks it on every later load.
 */
import type { ResizeMode } from '../image/decode.js';
import { makeDivisible, MOBILENET_V1_ALPHAS, MOBILENET_V2_ALPHAS, type KerasAppSpec } from './keras-apps/build.js';
import type { PreprocessMode } from './preprocess.js';
import { mirrored, type ExpectedHash } from '../util/download.js';

export type PublishedHash = ExpectedHash;

export interface ZooEntry {
  name: string;
  description: string;
  format: 'keras-h5';
  /** The .h5 file's URL (Keras' download location). */
  url: string;
  /** File name in the cache. */
  file: string;
  /** Keras' published hash of the file, where there is one. */
  hash?: PublishedHash;
  /** The architecture the weights belong to. */
  app: KerasAppSpec;
  inputSize: [number, number];
  preprocessing: PreprocessMode;
  resize: ResizeMode;
  /** Layer whose output gives the features. */
  cutAt: string;
  /** Global pooling after the cut ('none' when the cut layer already gives a vector, e.g. VGG16's fc2). */
  pooling: 'avg' | 'max' | 'none';
  featureDim: number;
  /**
   * The same network as a TF.js layers model folder (with the 1000-class top) where one is published: what
   * Teachable Machine (v1) and ml5.js load. `tlearn models import <folder> --name <zoo-name>` accepts a copy.
   */
  tfjsUrl?: string;
}

const KERAS = 'https://storage.googleapis.com/tensorflow/keras-applications';

function mobilenetV2(alpha: number): ZooEntry {
  const file = `mobilenet_v2_weights_tf_dim_ordering_tf_kernels_${Number.isInteger(alpha) ? alpha.toFixed(1) : String(alpha)}_224_no_top.h5`;
  return {
    name: `mobilenet_v2_${alpha.toFixed(2)}`,
    description: `MobileNetV2 width ${alpha}, 224x224, ImageNet (Keras weights)`,
    format: 'keras-h5',
    url: `${KERAS}/mobilenet_v2/${file}`,
    file,
    app: { family: 'mobilenet_v2', alpha, includeTop: false },
    inputSize: [224, 224],
    preprocessing: 'tf',
    resize: 'squash',
    cutAt: 'out_relu',
    pooling: 'avg',
    featureDim: alpha > 1 ? makeDivisible(1280 * alpha, 8) : 1280,
  };
}

/**
 * MobileNet (v1) at 224, no top (keras/src/applications/mobilenet.py: BASE_WEIGHT_PATH + 'mobilenet_%s_%d_tf_no_top.h5'
 * with alpha as '2_5', '5_0', '7_5', '1_0'). Features: conv_pw_13_relu (7x7x(1024 alpha)), global average pooling.
 */
function mobilenetV1(alpha: number): ZooEntry {
  const text = { 0.25: '2_5', 0.5: '5_0', 0.75: '7_5', 1: '1_0' }[alpha]!;
  const file = `mobilenet_${text}_224_tf_no_top.h5`;
  return {
    name: `mobilenet_v1_${alpha.toFixed(2)}`,
    description: `MobileNet (v1) width ${alpha}, 224x224, ImageNet (Keras weights)`,
    format: 'keras-h5',
    url: `${KERAS}/mobilenet/${file}`,
    file,
    app: { family: 'mobilenet_v1', alpha, includeTop: false },
    inputSize: [224, 224],
    preprocessing: 'tf',
    resize: 'squash',
    cutAt: 'conv_pw_13_relu',
    pooling: 'avg',
    featureDim: Math.trunc(1024 * alpha),
    tfjsUrl: `https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v1_${alpha === 1 ? '1.0' : alpha.toFixed(2)}_224/model.json`,
  };
}

export const ZOO: ZooEntry[] = [
  ...MOBILENET_V2_ALPHAS.map(mobilenetV2),
  ...MOBILENET_V1_ALPHAS.map(mobilenetV1),
  {
    name: 'vgg16',
    description: "VGG16, 224x224, ImageNet (Keras weights, with the fully-connected top; features from fc2, as in the notebook)",
    format: 'keras-h5',
    url: `${KERAS}/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5`,
    file: 'vgg16_weights_tf_dim_ordering_tf_kernels.h5',
    hash: { algorithm: 'md5', value: '64373286793e3c8b2b4e3219cbf3544b' },
    app: { family: 'vgg16', includeTop: true },
    inputSize: [224, 224],
    preprocessing: 'caffe',
    resize: 'squash',
    cutAt: 'fc2',
    pooling: 'none',
    featureDim: 4096,
  },
  {
    name: 'vgg16_notop',
    description: 'VGG16 without the fully-connected top, 224x224, ImageNet (Keras weights; global average pooling of block5)',
    format: 'keras-h5',
    url: `${KERAS}/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`,
    file: 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5',
    hash: { algorithm: 'md5', value: '6d6bbae143d832006294945121d1f1fc' },
    app: { family: 'vgg16', includeTop: false },
    inputSize: [224, 224],
    preprocessing: 'caffe',
    resize: 'squash',
    cutAt: 'block5_pool',
    pooling: 'avg',
    featureDim: 512,
  },
  {
    name: 'resnet50',
    description: 'ResNet50, 224x224, ImageNet (Keras weights, no top; global average pooling)',
    format: 'keras-h5',
    url: `${KERAS}/resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`,
    file: 'resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5',
    hash: { algorithm: 'md5', value: '4d473c1dd8becc155b73f8504c6f6626' },
    app: { family: 'resnet50', includeTop: false },
    inputSize: [224, 224],
    preprocessing: 'caffe',
    resize: 'squash',
    cutAt: 'conv5_block3_out',
    pooling: 'avg',
    featureDim: 2048,
  },
];

export const DEFAULT_BACKBONE = 'mobilenet_v2_0.35';

/** Accepts 'mobilenet_v2_0.35', 'mobilenet_v2_0.5', 'MobileNetV2_1', 'mobilenet_v1_0.75', 'MobileNet_1', 'VGG16' etc. */
export function findZooEntry(name: string): ZooEntry | undefined {
  const n = name.trim().toLowerCase();
  const direct = ZOO.find((e) => e.name === n);
  if (direct) return direct;
  const m = /^mobilenet_?v2_?([0-9.]+)$/.exec(n);
  if (m) return ZOO.find((e) => e.name === `mobilenet_v2_${Number(m[1]).toFixed(2)}`);
  const v1 = /^mobilenet_?(?:v1_?)?_?([0-9.]+)$/.exec(n);
  if (v1) return ZOO.find((e) => e.name === `mobilenet_v1_${Number(v1[1]).toFixed(2)}`);
  return undefined;
}

/** Applies $TLEARN_MIRROR (a base URL that replaces https://storage.googleapis.com) for mirrors and tests. */
export function resolveUrl(url: string): string {
  return mirrored(url);
}
