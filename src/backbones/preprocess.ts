/** Pixel preprocessing, named after Keras' `preprocess_input` modes. */
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

/** The preprocessed value of byte v in channel c of output pixel (RGB order in, mode's order out). */
function valueOf(mode: PreprocessMode, c: number, v: number): number {
  switch (mode) {
    case 'tf':
      return v / 127.5 - 1;
    case 'unit':
      return v / 255;
    case 'raw':
      return v;
    case 'caffe':
      return v - CAFFE_MEAN_BGR[c]!;
    case 'torch':
      return (v / 255 - TORCH_MEAN[c]!) / TORCH_STD[c]!;
    default:
      throw new Error(`unknown preprocessing '${mode as string}'`);
  }
}

/** Per mode, 3 x 256 float32 values: output channel c of input byte v at [c * 256 + v] (one lookup per value). */
const tables = new Map<PreprocessMode, Float32Array>();

function table(mode: PreprocessMode): Float32Array {
  let t = tables.get(mode);
  if (!t) {
    t = new Float32Array(768);
    for (let c = 0; c < 3; c++) for (let v = 0; v < 256; v++) t[c * 256 + v] = valueOf(mode, c, v);
    tables.set(mode, t);
  }
  return t;
}

/** Writes the preprocessed float values of packed RGB bytes into `out` at `offset` (NHWC). */
export function preprocessInto(rgb: Uint8Array, mode: PreprocessMode, out: Float32Array, offset = 0): void {
  const t = table(mode);
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
