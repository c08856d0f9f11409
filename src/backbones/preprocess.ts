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

/** Writes the preprocessed float values of packed RGB bytes into `out` at `offset` (NHWC). */
export function preprocessInto(rgb: Uint8Array, mode: PreprocessMode, out: Float32Array, offset = 0): void {
  const n = rgb.length;
  switch (mode) {
    case 'tf':
      for (let i = 0; i < n; i++) out[offset + i] = rgb[i]! / 127.5 - 1;
      return;
    case 'unit':
      for (let i = 0; i < n; i++) out[offset + i] = rgb[i]! / 255;
      return;
    case 'raw':
      for (let i = 0; i < n; i++) out[offset + i] = rgb[i]!;
      return;
    case 'caffe':
      for (let i = 0; i < n; i += 3) {
        out[offset + i] = rgb[i + 2]! - CAFFE_MEAN_BGR[0]!;
        out[offset + i + 1] = rgb[i + 1]! - CAFFE_MEAN_BGR[1]!;
        out[offset + i + 2] = rgb[i]! - CAFFE_MEAN_BGR[2]!;
      }
      return;
    case 'torch':
      for (let i = 0; i < n; i += 3)
        for (let c = 0; c < 3; c++) out[offset + i + c] = (rgb[i + c]! / 255 - TORCH_MEAN[c]!) / TORCH_STD[c]!;
      return;
    default:
      throw new Error(`unknown preprocessing '${mode as string}'`);
  }
}

export function preprocess(rgb: Uint8Array, mode: PreprocessMode): Float32Array {
  const out = new Float32Array(rgb.length);
  preprocessInto(rgb, mode, out, 0);
  return out;
}
