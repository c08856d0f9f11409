/**
 * Decodes any supported image to packed 8-bit RGB at a fixed size: EXIF orientation applied,
 * grayscale/CMYK/16-bit/palette normalised to 3-channel sRGB, transparency composited on white (as a browser
 * shows it on a white page), animated images read at their first frame, then resized. Training, predict,
 * evaluate and serve all decode through here, so they see the same pixels.
 *
 * decodeImage (and the feature pipeline, through decodeForTarget) resizes once: 8-bit JPEGs without a colour
 * profile (nearly all photos) whose short side is at most twice the target go through libjpeg-turbo, then the
 * WebAssembly resampler (src/image/resample.ts, within 2 levels of sharp's resize); larger JPEGs go through one
 * sharp pipeline with shrink-on-load, as before; other formats, and JPEGs libjpeg-turbo rejects, are decoded by
 * sharp at their own size, then resampled.
 *
 * Training keeps a decoded image per run and redoes only the rest each epoch: decodeRgb gives that image (at its
 * own size, or shrunk so its short side is the bound), resizeRgb / augmentation in augment.ts finish it.
 */
import { decodeBmp } from './bmp.js';
import { isBmp, openImage, toRgb } from './sharp-image.js';
import { decodeResizedBySharp } from './sharp-resize.js';
import { ImageDecodeError, decodeFailureReason, readImageBytes, withDecodeErrors } from './decode-errors.js';
import { readJpegInfo } from './jpeg-header.js';
import { decodeJpegTurbo, jpegTurboAvailable } from './jpeg-turbo.js';
import { resampleRgb } from './resample.js';
import { orientRgb, type RgbImage } from './rgb.js';

export type { RgbImage } from './rgb.js';
export { ImageDecodeError, decodeFailureReason, readImageBytes, withDecodeErrors };
export { isBmp, openImage, toRgb, TRANSPARENT_BACKGROUND } from './sharp-image.js';

import type { DecodeOptions, ResizeKernel } from './types.js';

export { RESIZE_MODES, type DecodeOptions, type ResizeKernel, type ResizeMode } from './types.js';

/** One line for logs and benchmarks: which decoders are in use. */
export function describeDecoder(): string {
  return `${jpegTurboAvailable() ? 'libjpeg-turbo for JPEG' : 'sharp for JPEG (libjpeg-turbo binding not loadable)'}, sharp for other formats, WebAssembly resampling`;
}

/** Stage 1's bound for a target size: images whose short side exceeds it are shrunk to it. */
export function decodeBound(o: { width: number; height: number }): number {
  return 2 * Math.max(o.width, o.height);
}

export interface DecodeRgbOptions {
  /** Short-side bound (default: none). */
  bound?: number;
  /** Kernel for shrinking to the bound. */
  kernel?: ResizeKernel;
}

async function viaSharp(buf: Uint8Array, o: DecodeRgbOptions): Promise<RgbImage> {
  let p = openImage(buf);
  if (o.bound) p = p.resize(o.bound, o.bound, { fit: 'outside', withoutEnlargement: true, kernel: o.kernel ?? 'linear' });
  const { data, info } = await toRgb(p).toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
}

/** libjpeg-turbo's image when the bytes are an 8-bit JPEG it can decode exactly as sharp would (no colour profile, not CMYK) within `bound`. */
async function viaTurbo(buf: Uint8Array, bound?: number): Promise<RgbImage | 'too-large' | undefined> {
  const jpeg = jpegTurboAvailable() ? readJpegInfo(buf) : undefined;
  if (!jpeg || jpeg.precision !== 8 || !(jpeg.components === 1 || jpeg.components === 3) || jpeg.hasIcc) return undefined;
  if (bound && Math.min(jpeg.width, jpeg.height) > bound) return 'too-large';
  const img = await decodeJpegTurbo(buf).catch(() => undefined);
  return img && img.width === jpeg.width && img.height === jpeg.height ? orientRgb(img, jpeg.orientation) : undefined;
}

/** Stage 1: the upright 3-channel sRGB image, at its own size or shrunk to `bound` on the short side. */
export async function decodeRgb(src: string | Uint8Array, o: DecodeRgbOptions = {}, label = typeof src === 'string' ? src : '<buffer>'): Promise<RgbImage> {
  const buf = await readImageBytes(src, label);
  return withDecodeErrors(label, buf, async () => {
    const turbo = await viaTurbo(buf, o.bound);
    if (turbo && turbo !== 'too-large') return turbo;
    if (isBmp(buf)) {
      const b = decodeBmp(buf);
      const s = Math.min(b.width, b.height);
      if (!o.bound || s <= o.bound) return b;
      const f = o.bound / s;
      const w = Math.max(1, Math.round(b.width * f));
      const h = Math.max(1, Math.round(b.height * f));
      return { data: resampleRgb(b, w, h, o.kernel ?? 'linear'), width: w, height: h };
    }
    return viaSharp(buf, o);
  });
}

/** Stage 2: a stage-1 image resized to the target (squash or centre crop). */
export function resizeRgb(img: RgbImage, o: DecodeOptions): Uint8Array {
  if (img.width === o.width && img.height === o.height) return img.data.slice(0, o.width * o.height * 3);
  return resampleRgb(img, o.width, o.height, o.kernel ?? 'linear', o.resize ?? 'squash');
}

/** An image on its way to the network: already at the target size (`rgb`), or decoded for the resampler (`img`). */
export type TargetImage = { rgb: Uint8Array; img?: undefined } | { img: RgbImage; rgb?: undefined };

/**
 * The decode behind decodeImage, with the last step left to the caller (so that the feature pipeline resamples
 * straight into its batch): JPEGs whose short side is within the bound through libjpeg-turbo, larger ones in one
 * sharp pipeline with shrink-on-load (sharp-resize.ts), everything else decoded by sharp at its own size;
 * the resampler then resizes in one step (never twice).
 */
export async function decodeForTarget(src: string | Uint8Array, opts: DecodeOptions, label = typeof src === 'string' ? src : '<buffer>'): Promise<TargetImage> {
  const buf = await readImageBytes(src, label);
  const turbo = await withDecodeErrors(label, buf, () => viaTurbo(buf, decodeBound(opts)));
  if (turbo === 'too-large') return { rgb: await decodeResizedBySharp(buf, opts, label) };
  if (turbo) return { img: turbo };
  return { img: await decodeRgb(buf, {}, label) };
}

/** Decodes an image (a path or its bytes) to width*height*3 bytes of RGB. */
export async function decodeImage(src: string | Uint8Array, opts: DecodeOptions, label = typeof src === 'string' ? src : '<buffer>'): Promise<Uint8Array> {
  const t = await decodeForTarget(src, opts, label);
  return t.rgb ?? resizeRgb(t.img, opts);
}
