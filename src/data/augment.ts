/**
 * Data augmentation (random resized crop, horizontal flip, small rotation, colour jitter) and test-time
 * variants (flips and centre crops), done by sharp while decoding. Augmentation is seeded per image and epoch,
 * so a run is reproducible whatever order the decodes finish in.
 */
import { promises as fs } from 'node:fs';
import sharp, { type Sharp } from 'sharp';
import { Rng } from '../util/rng.js';
import { decodeBmp } from './bmp.js';
import { decodeFailureReason, ImageDecodeError, isBmp, openImage, toRgb, type DecodeOptions } from './decode.js';

export interface AugmentOptions {
  /** Random resized crop: the smallest share of the image area kept (0 = no cropping). */
  crop: number;
  /** Horizontal flips with probability 1/2. */
  flip: boolean;
  /** Rotation by up to this many degrees either way (0 = none). */
  rotate: number;
  /** Brightness, contrast and saturation changed by up to this fraction (0 = none). */
  color: number;
}

export const DEFAULT_AUGMENT: AugmentOptions = { crop: 0.6, flip: true, rotate: 10, color: 0.2 };

export class AugmentSpecError extends Error {}

/** Parses "crop=0.6,flip,rotate=10,color=0.2" (any subset; 'default' or '' for the defaults; 'noflip' etc. to turn one off). */
export function parseAugment(spec: string | boolean | undefined): AugmentOptions | undefined {
  if (spec === undefined || spec === false) return undefined;
  if (spec === true || spec.trim() === '' || spec.trim() === 'default') return { ...DEFAULT_AUGMENT };
  const o: AugmentOptions = { crop: 0, flip: false, rotate: 0, color: 0 };
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [k, v] = part.split('=').map((s) => s.trim()) as [string, string | undefined];
    const num = (min: number, max: number) => {
      const n = v === undefined ? NaN : Number(v);
      if (!(n >= min && n <= max)) throw new AugmentSpecError(`--augment ${k} needs a value in [${min}, ${max}], got '${v ?? ''}'`);
      return n;
    };
    if (k === 'crop') o.crop = v === undefined ? DEFAULT_AUGMENT.crop : num(0.05, 1);
    else if (k === 'flip') o.flip = true;
    else if (k === 'rotate') o.rotate = v === undefined ? DEFAULT_AUGMENT.rotate : num(0, 45);
    else if (k === 'color' || k === 'colour') o.color = v === undefined ? DEFAULT_AUGMENT.color : num(0, 0.9);
    else throw new AugmentSpecError(`--augment: unknown part '${k}' (use crop=<min area>, flip, rotate=<degrees>, color=<amount>)`);
  }
  return o;
}

export function describeAugment(a: AugmentOptions): string {
  const parts = [];
  if (a.crop > 0 && a.crop < 1) parts.push(`random resized crop (area ${a.crop}-1, aspect 3/4-4/3)`);
  if (a.flip) parts.push('horizontal flip');
  if (a.rotate > 0) parts.push(`rotation ±${a.rotate}°`);
  if (a.color > 0) parts.push(`colour jitter ±${Math.round(a.color * 100)}%`);
  return parts.length ? parts.join(', ') : 'none';
}

async function source(buf: Uint8Array): Promise<{ img: () => Sharp; width: number; height: number }> {
  if (isBmp(buf)) {
    const b = decodeBmp(buf);
    return { img: () => openImage(buf), width: b.width, height: b.height };
  }
  const meta = await sharp(buf).metadata();
  if (!meta.width || !meta.height) throw new Error('no image dimensions');
  const swap = (meta.orientation ?? 1) >= 5;
  return { img: () => openImage(buf), width: swap ? meta.height : meta.width, height: swap ? meta.width : meta.height };
}

async function finish(p: Sharp, o: DecodeOptions, label: string): Promise<Uint8Array> {
  const { data, info } = await toRgb(p).toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || data.length !== o.width * o.height * 3) throw new ImageDecodeError(label, `decoded to ${info.channels} channels, ${info.width}x${info.height}`);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

async function withErrors<T>(label: string, buf: Uint8Array, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e: any) {
    if (e instanceof ImageDecodeError) throw e;
    throw new ImageDecodeError(label, decodeFailureReason(buf, e));
  }
}

async function readBytes(src: string | Uint8Array, label: string): Promise<Uint8Array> {
  try {
    return typeof src === 'string' ? await fs.readFile(src) : src;
  } catch (e: any) {
    throw new ImageDecodeError(label, `cannot read file (${e.code ?? e.message})`);
  }
}

/**
 * Rotation (about the centre, bilinear), horizontal flip and colour jitter of a square RGB image in one pass,
 * from an S x S source that covers the rotated output's corners.
 */
export function transformRgb(src: Uint8Array, S: number, out: Uint8Array, w: number, h: number, t: { angle: number; flip: boolean; brightness: number; contrast: number; saturation: number }): void {
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

/** Decodes an image with a random augmentation drawn from `rng`. */
export async function decodeAugmented(src: string | Uint8Array, o: DecodeOptions, aug: AugmentOptions, rng: Rng, label = typeof src === 'string' ? src : '<buffer>'): Promise<Uint8Array> {
  const buf = await readBytes(src, label);
  return withErrors(label, buf, async () => {
    const s = await source(buf);
    const W = s.width;
    const H = s.height;
    let box = { left: 0, top: 0, width: W, height: H };
    if (aug.crop > 0 && aug.crop < 1) {
      for (let attempt = 0; attempt < 10; attempt++) {
        const area = W * H * (aug.crop + rng.next() * (1 - aug.crop));
        const ratio = Math.exp(Math.log(3 / 4) + rng.next() * (Math.log(4 / 3) - Math.log(3 / 4)));
        const cw = Math.round(Math.sqrt(area * ratio));
        const ch = Math.round(Math.sqrt(area / ratio));
        if (cw >= 1 && ch >= 1 && cw <= W && ch <= H) {
          box = { left: rng.int(W - cw + 1), top: rng.int(H - ch + 1), width: cw, height: ch };
          break;
        }
      }
    }
    const angle = aug.rotate > 0 ? (rng.next() * 2 - 1) * aug.rotate : 0;
    const flip = aug.flip && rng.next() < 0.5;
    const j = () => (aug.color > 0 ? 1 + (rng.next() * 2 - 1) * aug.color : 1);
    const colour = { brightness: j(), contrast: j(), saturation: j() };
    let p = s.img();
    if (box.width !== W || box.height !== H) p = p.extract(box);
    const fit = (o.resize ?? 'squash') === 'squash' ? 'fill' : 'cover';
    if (!angle && aug.color === 0) {
      p = p.resize(o.width, o.height, { fit, position: 'centre', kernel: o.kernel ?? 'linear' });
      if (flip) p = p.flop();
      return finish(p, o, label);
    }
    // resize to a square that covers the rotated output's corners, then rotate/flip/jitter in one pass
    const rad = (Math.abs(angle) * Math.PI) / 180;
    const side = Math.max(o.width, o.height);
    const S = Math.ceil(side * (Math.cos(rad) + Math.sin(rad)));
    const big = await finish(p.resize(S, S, { fit, position: 'centre', kernel: o.kernel ?? 'linear' }), { ...o, width: S, height: S }, label);
    const out = new Uint8Array(o.width * o.height * 3);
    transformRgb(big, S, out, o.width, o.height, { angle, flip, ...colour });
    return out;
  });
}

/** A test-time view of an image: optionally flipped, optionally a centred crop keeping `crop` of each side. */
export interface TtaVariant {
  flip: boolean;
  crop: number;
}

/** Flip + centre crops, averaged at test time (--tta). */
export const TTA_VARIANTS: TtaVariant[] = [
  { flip: false, crop: 1 },
  { flip: true, crop: 1 },
  { flip: false, crop: 0.875 },
  { flip: true, crop: 0.875 },
];

export async function decodeVariant(src: string | Uint8Array, o: DecodeOptions, v: TtaVariant, label = typeof src === 'string' ? src : '<buffer>'): Promise<Uint8Array> {
  const buf = await readBytes(src, label);
  return withErrors(label, buf, async () => {
    const s = await source(buf);
    let p = s.img();
    if (v.crop < 1) {
      const cw = Math.max(1, Math.round(s.width * v.crop));
      const ch = Math.max(1, Math.round(s.height * v.crop));
      p = p.extract({ left: Math.floor((s.width - cw) / 2), top: Math.floor((s.height - ch) / 2), width: cw, height: ch });
    }
    p = p.resize(o.width, o.height, { fit: (o.resize ?? 'squash') === 'squash' ? 'fill' : 'cover', position: 'centre', kernel: o.kernel ?? 'linear' });
    if (v.flip) p = p.flop();
    return finish(p, o, label);
  });
}

/** The generator for image `index` in `epoch` (independent of decode order). */
export function augmentRng(seed: number, epoch: number, index: number): Rng {
  return new Rng(((seed * 1_000_003) ^ (epoch * 7919) ^ (index * 104_729)) >>> 0);
}
