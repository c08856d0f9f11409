/**
 * Decodes any supported image to packed 8-bit RGB at a fixed size with sharp: EXIF orientation applied,
 * grayscale/CMYK/16-bit/alpha normalised to 3-channel sRGB, then resized.
 */
import { promises as fs } from 'node:fs';
import sharp, { type Sharp } from 'sharp';
import { decodeBmp } from './bmp.js';
import { sniffImageFormat } from './formats.js';

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

function input(buf: Uint8Array): Sharp {
  if (sniffImageFormat(buf.subarray(0, 16)) === 'bmp') {
    const bmp = decodeBmp(buf);
    return sharp(bmp.data, { raw: { width: bmp.width, height: bmp.height, channels: 3 } });
  }
  return sharp(buf, { failOn: 'error', sequentialRead: true });
}

/** A readable reason for a failed decode (libvips' message, or what the bytes show, e.g. a truncated JPEG). */
export function decodeFailureReason(buf: Uint8Array, e: unknown): string {
  const fmt = sniffImageFormat(buf.subarray(0, 16));
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
    const { data, info } = await input(buf)
      .autoOrient()
      .resize(opts.width, opts.height, {
        fit: (opts.resize ?? 'squash') === 'squash' ? 'fill' : 'cover',
        position: 'centre',
        kernel: opts.kernel ?? 'linear',
      })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== opts.width * opts.height * 3) {
      throw new Error(`decoded to ${info.channels} channels, ${info.width}x${info.height}`);
    }
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } catch (e: any) {
    if (e instanceof ImageDecodeError) throw e;
    throw new ImageDecodeError(label, decodeFailureReason(buf, e));
  }
}
