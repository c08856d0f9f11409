/** Pixel preprocessing, named after Keras' `preprocess_input` modes. */
import type { DecodeOptions, TargetImage } from '../image/decode.js';
import { resampleRgbInto } from '../image/resample.js';

export type PreprocessMode =
  /** x / 127.5 - 1 (MobileNet, Inception, Teachable Machine) */
  | 'tf'
  /** RGB → BGR, minus the ImageNet means [103.939, 116.779, 123.68] (VGG, ResNet) */
  | 'caffe'
  /** x / 255, minus ImageNet mean, divided by std (PyTorch-trained models) */
  | 'torch'
  /** x / 255 (models trained from scratch on [0, 1] inputs) */
  | 'unit'
  /** x unchanged, 0..255 */
  | 'raw';

export const PREPROCESS_MODES: PreprocessMode[] = ['tf', 'caffe', 'torch', 'unit', 'raw'];

export const PREPROCESS_DESCRIPTIONS: Record<PreprocessMode, string> = {
  tf: 'RGB, x / 127.5 - 1',
  caffe: 'BGR, x - [103.939, 116.779, 123.68]',
  torch: 'RGB, (x / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]',
  unit: 'RGB, x / 255',
  raw: 'RGB, x (0..255)',
};

const CAFFE_MEAN_BGR = [103.939, 116.779, 123.68];
const TORCH_MEAN = [0.485, 0.456, 0.406];
const TORCH_STD = [0.229, 0.224, 0.225];

/**
 * Every mode as one affine map per output channel c, computed in double precision and rounded to float32 once:
 * out[c] = (in[c'] / div[c] - mean[c]) / scale[c], with c' = 2 - c when `bgr` (caffe) and c otherwise. (Dividing
 * by 1 and subtracting 0 are exact, so these are the formulas above, bit for bit.)
 */
export interface PreprocessAffine {
  div: [number, number, number];
  mean: [number, number, number];
  scale: [number, number, number];
  bgr: boolean;
}

export function preprocessAffine(mode: PreprocessMode): PreprocessAffine {
  switch (mode) {
    case 'tf':
      return { div: [127.5, 127.5, 127.5], mean: [1, 1, 1], scale: [1, 1, 1], bgr: false };
    case 'unit':
      return { div: [255, 255, 255], mean: [0, 0, 0], scale: [1, 1, 1], bgr: false };
    case 'raw':
      return { div: [1, 1, 1], mean: [0, 0, 0], scale: [1, 1, 1], bgr: false };
    case 'caffe':
      return { div: [1, 1, 1], mean: [...CAFFE_MEAN_BGR] as [number, number, number], scale: [1, 1, 1], bgr: true };
    case 'torch':
      return { div: [255, 255, 255], mean: [...TORCH_MEAN] as [number, number, number], scale: [...TORCH_STD] as [number, number, number], bgr: false };
    default:
      throw new Error(`unknown preprocessing '${mode as string}'`);
  }
}

/** Per mode, 3 x 256 float32 values: output channel c of byte v at [c * 256 + v] (one lookup per value; input channel 2 - c when `bgr`). */
const tables = new Map<PreprocessMode, Float32Array>();

export function preprocessTable(mode: PreprocessMode): Float32Array {
  let t = tables.get(mode);
  if (!t) {
    const a = preprocessAffine(mode);
    t = new Float32Array(768);
    for (let c = 0; c < 3; c++) for (let v = 0; v < 256; v++) t[c * 256 + v] = (v / a.div[c]! - a.mean[c]!) / a.scale[c]!;
    tables.set(mode, t);
  }
  return t;
}

/** Writes the preprocessed float values of packed RGB bytes into `out` at `offset` (NHWC). */
export function preprocessInto(rgb: Uint8Array, mode: PreprocessMode, out: Float32Array, offset = 0): void {
  const t = preprocessTable(mode);
  const n = rgb.length - (rgb.length % 3);
  const o = out.subarray(offset, offset + n);
  // caffe wants BGR: output channel c takes input channel 2 - c
  const [i0, i2] = mode === 'caffe' ? [2, 0] : [0, 2];
  for (let i = 0; i < n; i += 3) {
    o[i] = t[rgb[i + i0]!]!;
    o[i + 1] = t[256 + rgb[i + 1]!]!;
    o[i + 2] = t[512 + rgb[i + i2]!]!;
  }
}

export function preprocess(rgb: Uint8Array, mode: PreprocessMode): Float32Array {
  const out = new Float32Array(rgb.length);
  preprocessInto(rgb, mode, out, 0);
  return out;
}

/**
 * Writes an image on its way to the network (decodeForTarget's) into `out` at `offset`, preprocessed: resized and
 * preprocessed in one WebAssembly pass, or only preprocessed when it is already at the target size. Bit for bit
 * what decodeImage followed by preprocessInto gives.
 */
export function preprocessTargetInto(t: TargetImage, o: DecodeOptions, mode: PreprocessMode, out: Float32Array, offset = 0): void {
  if (t.img) resampleRgbInto(t.img, o.width, o.height, o.kernel ?? 'linear', o.resize ?? 'squash', preprocessTable(mode), preprocessAffine(mode).bgr, out, offset);
  else preprocessInto(t.rgb, mode, out, offset);
}
