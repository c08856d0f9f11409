/**
 * What `tlearn check` learns about one image by decoding it once, small: whether it decodes at all (with the
 * same decoder and the same failure reasons as training), its upright size, and a 128-bit difference hash
 * (a 9x9 grey thumbnail; one bit per horizontal and per vertical neighbour pair, whether brightness falls) that
 * stays the same when an image is resized, recompressed or slightly recoloured — for finding near-duplicates.
 */
import { decodeFailureReason, ImageDecodeError, isBmp, openImage, toRgb } from './decode.js';
import { decodeBmp } from './bmp.js';
import { HEAD_BYTES, sniffImageFormat } from './formats.js';
import sharp from 'sharp';

/** Bits of a perceptual hash. */
export const HASH_BITS = 128;

export interface ImageProbe {
  /** Format by content (jpeg, png, ...). */
  format: string;
  /** Upright size (EXIF orientation applied). */
  width: number;
  height: number;
  /** HASH_BITS / 4 hex digits. */
  dhash: string;
  /** Mean colour of each cell of a 3x3 grid, as 54 hex digits (RGB per cell): near-duplicates must agree on it too. */
  colour: string;
  /** Nearly uniform (its hash says little, so it is left out of near-duplicate matching). */
  flat: boolean;
}

/** The signature of a 9x9 RGB thumbnail: its difference hash, 3x3 colour grid and whether it is nearly uniform. */
export function signatureOf(rgb: Uint8Array): { dhash: string; colour: string; flat: boolean } {
  const grey = new Uint8Array(81);
  for (let i = 0; i < 81; i++) grey[i] = Math.round(0.299 * rgb[i * 3]! + 0.587 * rgb[i * 3 + 1]! + 0.114 * rgb[i * 3 + 2]!);
  let colour = '';
  for (let gy = 0; gy < 3; gy++) {
    for (let gx = 0; gx < 3; gx++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let y = gy * 3; y < gy * 3 + 3; y++) for (let x = gx * 3; x < gx * 3 + 3; x++) sum += rgb[(y * 9 + x) * 3 + c]!;
        colour += Math.round(sum / 9).toString(16).padStart(2, '0');
      }
    }
  }
  return { ...dhashOf(grey), colour };
}

/** The difference hash of a 9x9 grey image (rows, then columns), as hex; and whether the image is nearly uniform. */
export function dhashOf(grey: Uint8Array): { dhash: string; flat: boolean } {
  const bits: number[] = [];
  for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) bits.push(grey[y * 9 + x]! > grey[y * 9 + x + 1]! ? 1 : 0);
  for (let x = 0; x < 8; x++) for (let y = 0; y < 8; y++) bits.push(grey[y * 9 + x]! > grey[(y + 1) * 9 + x]! ? 1 : 0);
  let hex = '';
  for (let i = 0; i < bits.length; i += 4) hex += ((bits[i]! << 3) | (bits[i + 1]! << 2) | (bits[i + 2]! << 1) | bits[i + 3]!).toString(16);
  let min = 255;
  let max = 0;
  for (const v of grey) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { dhash: hex, flat: max - min < 12 };
}

/** Decodes `buf` small; throws ImageDecodeError with the reason training would give. */
export async function probeImage(buf: Uint8Array, label: string): Promise<ImageProbe> {
  if (buf.length === 0) throw new ImageDecodeError(label, 'empty file');
  const format = sniffImageFormat(buf.subarray(0, HEAD_BYTES)) ?? 'unknown';
  try {
    let width: number;
    let height: number;
    if (isBmp(buf)) ({ width, height } = decodeBmp(buf));
    else {
      const meta = await sharp(buf).metadata();
      const swap = (meta.orientation ?? 1) >= 5;
      width = (swap ? meta.height : meta.width) ?? 0;
      height = (swap ? meta.width : meta.height) ?? 0;
    }
    const rgb = await toRgb(openImage(buf).resize(9, 9, { fit: 'fill', kernel: 'linear' })).toBuffer();
    return { format, width, height, ...signatureOf(new Uint8Array(rgb.buffer, rgb.byteOffset, rgb.byteLength)) };
  } catch (e) {
    if (e instanceof ImageDecodeError) throw e;
    throw new ImageDecodeError(label, decodeFailureReason(buf, e));
  }
}

const POPCOUNT = Array.from({ length: 16 }, (_, i) => (i & 1) + ((i >> 1) & 1) + ((i >> 2) & 1) + ((i >> 3) & 1));

/** The largest difference of one colour channel in one cell between two colour grids (0..255). */
export function colourDistance(a: string, b: string): number {
  let d = 0;
  for (let i = 0; i < a.length; i += 2) d = Math.max(d, Math.abs(parseInt(a.slice(i, i + 2), 16) - parseInt(b.slice(i, i + 2), 16)));
  return d;
}

/** Bits that differ between two hashes (hex strings of one length). */
export function hammingDistance(a: string, b: string): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += POPCOUNT[parseInt(a[i]!, 16) ^ parseInt(b[i]!, 16)]!;
  return d;
}

/**
 * Pairs of items whose hashes differ in at most `maxDistance` bits, without comparing every pair: the bits are
 * cut into maxDistance + 1 bands, and two hashes that close agree exactly on at least one band.
 */
export function nearPairs(hashes: string[], maxDistance = 8): Array<[number, number, number]> {
  const bands = maxDistance + 1;
  const binary = hashes.map((h) => [...h].map((c) => parseInt(c, 16).toString(2).padStart(4, '0')).join(''));
  const n = binary[0]?.length ?? 0;
  const cuts = Array.from({ length: bands + 1 }, (_, i) => Math.round((n * i) / bands));
  const seen = new Set<string>();
  const out: Array<[number, number, number]> = [];
  for (let b = 0; b < bands; b++) {
    const buckets = new Map<string, number[]>();
    binary.forEach((s, i) => {
      const key = s.slice(cuts[b], cuts[b + 1]);
      const list = buckets.get(key) ?? [];
      list.push(i);
      buckets.set(key, list);
    });
    for (const list of buckets.values()) {
      for (let x = 0; x < list.length; x++) {
        for (let y = x + 1; y < list.length; y++) {
          const i = list[x]!;
          const j = list[y]!;
          const key = `${i},${j}`;
          if (seen.has(key)) continue;
          seen.add(key);
          const d = hammingDistance(hashes[i]!, hashes[j]!);
          if (d <= maxDistance) out.push([i, j, d]);
        }
      }
    }
  }
  return out.sort((p, q) => p[0] - q[0] || p[1] - q[1]);
}
