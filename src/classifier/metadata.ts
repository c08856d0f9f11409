/** metadata.json next to a shipped model: everything needed to feed it and read its output. */
import type { ResizeKernel, ResizeMode } from '../image/decode.js';
import { PREPROCESS_DESCRIPTIONS, type PreprocessMode } from '../backbones/preprocess.js';
import type { HeadSpec } from '../engine/head.js';
import type { OpenSetThreshold } from './threshold.js';
import { VERSION } from '../version.js';

export interface ClassifierMetadata {
  format: 'tlearn-classifier';
  tlearnVersion: string;
  createdAt: string;
  labels: string[];
  /** [height, width] */
  inputSize: [number, number];
  /** TF.js input shape, batch first. */
  inputShape: [null, number, number, 3];
  layout: 'NHWC';
  dtype: 'float32';
  preprocessing: PreprocessMode;
  preprocessingDescription: string;
  resize: ResizeMode;
  kernel: ResizeKernel;
  output: 'probabilities';
  backbone: { name: string; source: string; id: string; params: number; note: string };
  head?: HeadSpec;
  /**
   * Temperature scaling fitted on the validation split. It is already folded into the model's final Dense layer
   * (kernel and bias divided by the temperature): the model's outputs are the calibrated probabilities, nothing
   * needs to be applied. Absent in models made before calibration existed or with --no-calibrate.
   */
  calibration?: { method: 'temperature'; temperature: number; layer: string; fittedOn: 'validation split'; folded: true };
  /** The default open-set threshold on the best class probability (chosen on the validation split). */
  threshold?: OpenSetThreshold;
  /** Teachable Machine's key for the input size, for tools that read TM metadata. */
  imageSize: number;
}

export function makeMetadata(p: {
  labels: string[];
  inputSize: [number, number];
  preprocessing: PreprocessMode;
  resize: ResizeMode;
  kernel: ResizeKernel;
  backbone: ClassifierMetadata['backbone'];
  head?: HeadSpec;
  calibration?: ClassifierMetadata['calibration'];
  threshold?: OpenSetThreshold;
}): ClassifierMetadata {
  return {
    format: 'tlearn-classifier',
    tlearnVersion: VERSION,
    createdAt: new Date().toISOString(),
    labels: p.labels,
    inputSize: p.inputSize,
    inputShape: [null, p.inputSize[0], p.inputSize[1], 3],
    layout: 'NHWC',
    dtype: 'float32',
    preprocessing: p.preprocessing,
    preprocessingDescription: PREPROCESS_DESCRIPTIONS[p.preprocessing],
    resize: p.resize,
    kernel: p.kernel,
    output: 'probabilities',
    backbone: p.backbone,
    head: p.head,
    ...(p.calibration ? { calibration: p.calibration } : {}),
    threshold: p.threshold,
    imageSize: p.inputSize[0],
  };
}
