/**
 * Decodes any supported image to packed 8-bit RGB at a fixed size with sharp: EXIF orientation applied,
 * grayscale/CMYK/16-bit/palette normalised to 3-channel sRGB, transparency composited on white (as a browser
 * shows it on a white page), animated images read at their first frame, then resized. Training, predict,
 * evaluate and serve all decode through here, so they see the same pixels.
 */
import { promises as fs } from 'node:fs';
import sharp, { type Sharp } from 'sharp';
import { decodeBmp } from './bmp.js';
import { HEAD_BYTES, sniffImageFormat } from './formats.js';

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

export class ImageDecodeError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
  }
}

sharp.cache(false);

/** sharp's default limit on decoded pixels (16383 x 16383), which stops decompression bombs. */
const PIXEL_LIMIT = 268402689;

/** What transparent pixels become: white. */
export const TRANSPARENT_BACKGROUND = { r: 255, g: 255, b: 255 };

export function isBmp(buf: Uint8Array): boolean {
  return sniffImageFormat(buf.subarray(0, HEAD_BYTES)) === 'bmp';
}

/** A sharp pipeline for an image's bytes (BMP through tlearn's own decoder), upright. */
export function openImage(buf: Uint8Array): Sharp {
  if (isBmp(buf)) {
    const bmp = decodeBmp(buf);
    return sharp(bmp.data, { raw: { width: bmp.width, height: bmp.height, channels: 3 } });
  }
  return sharp(buf, { failOn: 'error', sequentialRead: true }).autoOrient();
}

/** The end of every decode: transparency on white, sRGB, 8-bit, 3 channels. */
export function toRgb(p: Sharp): Sharp {
  return p.flatten({ background: TRANSPARENT_BACKGROUND }).toColourspace('srgb').raw({ depth: 'uchar' });
}

/** Width and height a PNG's header declares (for the message about a too-large image). */
function pngSize(buf: Uint8Array): [number, number] | undefined {
  if (buf.length < 24 || sniffImageFormat(buf.subarray(0, 8)) !== 'png') return undefined;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return [dv.getUint32(16), dv.getUint32(20)];
}

/** A readable reason for a failed decode (libvips' message, or what the bytes show, e.g. a truncated JPEG). */
export function decodeFailureReason(buf: Uint8Array, e: unknown): string {
  const fmt = sniffImageFormat(buf.subarray(0, HEAD_BYTES));
  const raw = String((e as Error)?.message ?? e);
  if (/pixel limit/i.test(raw)) {
    const size = pngSize(buf);
    return `image too large to decode (${size ? `${size[0]}x${size[1]} pixels, ` : ''}more than the limit of ${Math.round(PIXEL_LIMIT / 1e6)} megapixels)`;
  }
  if (fmt === 'heif' && /compression|codec|decoder|heif/i.test(raw)) return `not a readable image (HEIC/HEVC is not supported by the installed sharp; convert to JPEG or AVIF)`;
  if (fmt === 'jpeg' && !(buf[buf.length - 2] === 0xff && buf[buf.length - 1] === 0xd9)) return 'not a readable image (truncated JPEG: the file ends before its end-of-image marker)';
  if (fmt === 'png' && !Buffer.from(buf.subarray(Math.max(0, buf.length - 12))).includes(Buffer.from('IEND'))) return 'not a readable image (truncated PNG: no IEND chunk)';
  const msg = String((e as Error)?.message ?? e).split('\n')[0]!.replace(/^Input (buffer|file) (contains |has )?/, '');
  return `not a readable image (${msg})`;
}

/** Decodes an image (a path or its bytes) to width*height*3 bytes of RGB. */
export async function decodeImage(src: string | Uint8Array, opts: DecodeOptions, label = typeof src === 'string' ? src : '<buffer>'): Promise<Uint8Array> {
  let buf: Uint8Array;
  try {
    buf = typeof src === 'string' ? await fs.readFile(src) : src;
  } catch (e: any) {
    throw new ImageDecodeError(label, `cannot read file (${e.code ?? e.message})`);
  }
  if (buf.length === 0) throw new ImageDecodeError(label, 'empty file');
  try {
    const { data, info } = await toRgb(
      openImage(buf).resize(opts.width, opts.height, {
        fit: (opts.resize ?? 'squash') === 'squash' ? 'fill' : 'cover',
        position: 'centre',
        kernel: opts.kernel ?? 'linear',
      }),
    ).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== opts.width * opts.height * 3) {
      throw new Error(`decoded to ${info.channels} channels, ${info.width}x${info.height}`);
    }
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } catch (e: any) {
    if (e instanceof ImageDecodeError) throw e;
    throw new ImageDecodeError(label, decodeFailureReason(buf, e));
  }
}
