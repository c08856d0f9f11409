/** The target of a decode: size, how the image is fitted to it, and the resampling kernel. */

/** squash: stretch to the target size (what Keras `load_img(target_size=...)` does); center-crop: keep aspect, crop the middle. */
export type ResizeMode = 'squash' | 'center-crop';
export type ResizeKernel = 'nearest' | 'linear' | 'cubic' | 'lanczos3';

export const RESIZE_MODES: ResizeMode[] = ['squash', 'center-crop'];

export interface DecodeOptions {
  width: number;
  height: number;
  resize?: ResizeMode;
  kernel?: ResizeKernel;
}
