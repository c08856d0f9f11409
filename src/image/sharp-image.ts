/** How every sharp decode starts and ends, shared by the decoders (decode.ts, sharp-resize.ts) and the probe. */
import sharp, { type Sharp } from 'sharp';
import { decodeBmp } from './bmp.js';
import { HEAD_BYTES, sniffImageFormat } from './formats.js';

sharp.cache(false);

/** What transparent pixels become: white. */
export const TRANSPARENT_BACKGROUND = { r: 255, g: 255, b: 255 };

export function isBmp(buf: Uint8Array): boolean {
  return sniffImageFormat(buf.subarray(0, HEAD_BYTES)) === 'bmp';
}

/** A sharp pipeline for an image's bytes (BMP through tlearn's own decoder, which libvips lacks), upright. */
export function openImage(buf: Uint8Array): Sharp {
  if (isBmp(buf)) {
    const bmp = decodeBmp(buf);
    return sharp(bmp.data, { raw: { width: bmp.width, height: bmp.height, channels: 3 } });
  }
  return sharp(buf, { failOn: 'error', sequentialRead: true }).autoOrient();
}

/** The end of every sharp decode: transparency on white, sRGB, 8-bit, 3 channels. */
export function toRgb(p: Sharp): Sharp {
  return p.flatten({ background: TRANSPARENT_BACKGROUND }).toColourspace('srgb').raw({ depth: 'uchar' });
}
