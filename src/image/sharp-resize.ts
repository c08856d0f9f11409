/**
 * One sharp (libvips) pipeline that decodes, orients, resizes and converts an image in one trip. decodeImage uses
 * it for JPEGs more than twice the target size, where libjpeg's shrink-on-load makes it the cheapest path.
 */
import type { DecodeOptions } from './types.js';
import { readImageBytes, withDecodeErrors } from './decode-errors.js';
import { openImage, toRgb } from './sharp-image.js';

export async function decodeResizedBySharp(src: string | Uint8Array, opts: DecodeOptions, label: string): Promise<Uint8Array> {
  const buf = await readImageBytes(src, label);
  return withDecodeErrors(label, buf, async () => {
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
  });
}
