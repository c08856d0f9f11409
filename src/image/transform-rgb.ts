/** The per-pixel part of augmentation: rotation, mirroring and colour jitter of packed RGB in one pass. */
import { transformRgbWasm } from './resample.js';

export interface RgbTransform {
  angle: number;
  flip: boolean;
  brightness: number;
  contrast: number;
  saturation: number;
}

/**
 * Rotation (about the centre, bilinear), horizontal flip and colour jitter of a square RGB image in one pass,
 * from an S x S source that covers the rotated output's corners: in the WebAssembly module beside the resampler
 * (wasm/resample.ts, `transform`), which gives the same bytes as transformRgbReference below.
 */
export function transformRgb(src: Uint8Array, S: number, out: Uint8Array, w: number, h: number, t: RgbTransform): void {
  transformRgbWasm(src, S, out, w, h, Math.cos((t.angle * Math.PI) / 180), Math.sin((t.angle * Math.PI) / 180), t.flip, t.brightness, t.contrast, t.saturation);
}

/** transformRgb in JavaScript: the reference (and what tlearn used before the WebAssembly pass). */
export function transformRgbReference(src: Uint8Array, S: number, out: Uint8Array, w: number, h: number, t: RgbTransform): void {
  const cos = Math.cos((t.angle * Math.PI) / 180);
  const sin = Math.sin((t.angle * Math.PI) / 180);
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  const sc = (S - 1) / 2;
  let mean = 0;
  for (let i = 0; i < src.length; i += 3) mean += 0.299 * src[i]! + 0.587 * src[i + 1]! + 0.114 * src[i + 2]!;
  mean = (mean / (src.length / 3)) * t.brightness;
  const { brightness: b, contrast: k, saturation: sat } = t;
  for (let y = 0; y < h; y++) {
    const v = y - cy;
    for (let x = 0; x < w; x++) {
      // output pixels map 1:1 onto the rotated source, whose corners S covers
      const u = t.flip ? cx - x : x - cx;
      let sx = cos * u + sin * v + sc;
      let sy = -sin * u + cos * v + sc;
      sx = sx < 0 ? 0 : sx > S - 1 ? S - 1 : sx;
      sy = sy < 0 ? 0 : sy > S - 1 ? S - 1 : sy;
      const x0 = sx | 0;
      const y0 = sy | 0;
      const x1 = x0 + 1 < S ? x0 + 1 : x0;
      const y1 = y0 + 1 < S ? y0 + 1 : y0;
      const fx = sx - x0;
      const fy = sy - y0;
      const w00 = (1 - fx) * (1 - fy);
      const w01 = fx * (1 - fy);
      const w10 = (1 - fx) * fy;
      const w11 = fx * fy;
      const i00 = (y0 * S + x0) * 3;
      const i01 = (y0 * S + x1) * 3;
      const i10 = (y1 * S + x0) * 3;
      const i11 = (y1 * S + x1) * 3;
      const r = (src[i00]! * w00 + src[i01]! * w01 + src[i10]! * w10 + src[i11]! * w11) * b;
      const g = (src[i00 + 1]! * w00 + src[i01 + 1]! * w01 + src[i10 + 1]! * w10 + src[i11 + 1]! * w11) * b;
      const bl = (src[i00 + 2]! * w00 + src[i01 + 2]! * w01 + src[i10 + 2]! * w10 + src[i11 + 2]! * w11) * b;
      const gray = 0.299 * r + 0.587 * g + 0.114 * bl;
      const o = (y * w + x) * 3;
      const rr = (gray + (r - gray) * sat - mean) * k + mean;
      const gg = (gray + (g - gray) * sat - mean) * k + mean;
      const bb = (gray + (bl - gray) * sat - mean) * k + mean;
      out[o] = rr < 0 ? 0 : rr > 255 ? 255 : rr + 0.5;
      out[o + 1] = gg < 0 ? 0 : gg > 255 ? 255 : gg + 0.5;
      out[o + 2] = bb < 0 ? 0 : bb > 255 ? 255 : bb + 0.5;
    }
  }
}
