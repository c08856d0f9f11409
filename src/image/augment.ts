/**
 * Data augmentation (random resized crop, horizontal flip, small rotation, colour jitter) and test-time
 * variants (flips and centre crops). Both start from a decoded image (decodeRgb's stage 1, which training keeps
 * in its decoded-image cache), so an epoch never decodes a JPEG again. Augmentation is seeded per image and
 * epoch, so a run is reproducible whatever order the decodes finish in.
 */
import { Rng } from '../util/rng.js';
import { decodeBound, decodeForTarget, decodeRgb } from './decode.js';
import type { DecodeOptions } from './types.js';
import { resampleRgb, type PixelRect } from './resample.js';
import { flipRgbInPlace, type RgbImage } from './rgb.js';
import { transformRgb } from './transform-rgb.js';

export { transformRgb } from './transform-rgb.js';

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

/** The random choices for one image of width x height: drawn in a fixed order, so seeds reproduce them. */
export interface AugmentDraw {
  box: PixelRect;
  angle: number;
  flip: boolean;
  /** undefined when colour jitter is off */
  colour?: { brightness: number; contrast: number; saturation: number };
}

export function drawAugmentation(W: number, H: number, aug: AugmentOptions, rng: Rng): AugmentDraw {
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
  const j = () => 1 + (rng.next() * 2 - 1) * aug.color;
  const colour = aug.color > 0 ? { brightness: j(), contrast: j(), saturation: j() } : undefined;
  return { box, angle, flip, colour };
}

/** An augmented network input from a decoded image: crop, resize, then flip/rotate/jitter. */
export function augmentRgb(img: RgbImage, o: DecodeOptions, aug: AugmentOptions, rng: Rng): Uint8Array {
  const { box, angle, flip, colour } = drawAugmentation(img.width, img.height, aug, rng);
  const kernel = o.kernel ?? 'linear';
  const mode = o.resize ?? 'squash';
  if (!angle && !colour) {
    const out = resampleRgb(img, o.width, o.height, kernel, mode, box);
    return flip ? flipRgbInPlace(out, o.width, o.height) : out;
  }
  // resize to a square that covers the rotated output's corners, then rotate/flip/jitter in one pass
  const rad = (Math.abs(angle) * Math.PI) / 180;
  const S = Math.ceil(Math.max(o.width, o.height) * (Math.cos(rad) + Math.sin(rad)));
  const big = resampleRgb(img, S, S, kernel, mode, box);
  const out = new Uint8Array(o.width * o.height * 3);
  transformRgb(big, S, out, o.width, o.height, { angle, flip, ...(colour ?? { brightness: 1, contrast: 1, saturation: 1 }) });
  return out;
}

/** Decodes an image with a random augmentation drawn from `rng`. */
export async function decodeAugmented(src: string | Uint8Array, o: DecodeOptions, aug: AugmentOptions, rng: Rng, label = typeof src === 'string' ? src : '<buffer>'): Promise<Uint8Array> {
  return augmentRgb(await decodeRgb(src, { bound: decodeBound(o), kernel: o.kernel }, label), o, aug, rng);
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

/** A test-time view of a decoded image. */
export function variantRgb(img: RgbImage, o: DecodeOptions, v: TtaVariant): Uint8Array {
  let box: PixelRect | undefined;
  if (v.crop < 1) {
    const cw = Math.max(1, Math.round(img.width * v.crop));
    const ch = Math.max(1, Math.round(img.height * v.crop));
    box = { left: Math.floor((img.width - cw) / 2), top: Math.floor((img.height - ch) / 2), width: cw, height: ch };
  }
  const out = resampleRgb(img, o.width, o.height, o.kernel ?? 'linear', o.resize ?? 'squash', box);
  return v.flip ? flipRgbInPlace(out, o.width, o.height) : out;
}

/**
 * Every test-time view of one image, decoded once. The plain view is exactly decodeImage's pixels (one resize
 * from the decoded image), so TTA with the plain view alone evaluates as predict does. A JPEG too large for
 * libjpeg-turbo's path arrives already at the target size (sharp's shrink-on-load); its crops are then cut
 * from a decode bounded at twice the target.
 */
export async function decodeViews(src: string | Uint8Array, o: DecodeOptions, variants: readonly TtaVariant[], label = typeof src === 'string' ? src : '<buffer>'): Promise<Uint8Array[]> {
  const t = await decodeForTarget(src, o, label);
  if (t.img) return variants.map((v) => variantRgb(t.img, o, v));
  let bounded: RgbImage | undefined;
  const views: Uint8Array[] = [];
  for (const v of variants) {
    if (v.crop >= 1) {
      const rgb = t.rgb.slice();
      views.push(v.flip ? flipRgbInPlace(rgb, o.width, o.height) : rgb);
    } else {
      bounded ??= await decodeRgb(src, { bound: decodeBound(o), kernel: o.kernel }, label);
      views.push(variantRgb(bounded, o, v));
    }
  }
  return views;
}

export async function decodeVariant(src: string | Uint8Array, o: DecodeOptions, v: TtaVariant, label = typeof src === 'string' ? src : '<buffer>'): Promise<Uint8Array> {
  return (await decodeViews(src, o, [v], label))[0]!;
}

/** The generator for image `index` in `epoch` (independent of decode order). */
export function augmentRng(seed: number, epoch: number, index: number): Rng {
  return new Rng(((seed * 1_000_003) ^ (epoch * 7919) ^ (index * 104_729)) >>> 0);
}

/** What an augmentation function does, as plain data: a worker thread can make the same inputs from it. */
export interface AugmentSpec {
  decode: DecodeOptions;
  aug: AugmentOptions;
  seed: number;
  epoch: number;
}

/** An augmentation of decoded images, per image index; `spec` says what it does (see augmentFunction). */
export type AugmentFn = ((img: RgbImage, index: number) => Uint8Array) & { spec?: AugmentSpec };

/**
 * Epoch `epoch`'s augmentation (image `index` drawn from augmentRng(seed, epoch, index)), with its spec attached so
 * that the batch pool (engine/batch-pool.ts) can run it in worker threads with the same result, bit for bit.
 */
export function augmentFunction(decode: DecodeOptions, aug: AugmentOptions, seed: number, epoch: number): AugmentFn {
  const fn: AugmentFn = (img, index) => augmentRgb(img, decode, aug, augmentRng(seed, epoch, index));
  fn.spec = { decode: { ...decode }, aug: { ...aug }, seed, epoch };
  return fn;
}

/** Decodes and augments a file, per image index; `spec` as for AugmentFn. */
export type DecodeAugmentedFn = ((path: string, index: number) => Promise<Uint8Array>) & { spec?: AugmentSpec };

/** decodeAugmented for epoch `epoch` (the same draws as augmentFunction's), with its spec attached. */
export function decodeAugmentedFunction(decode: DecodeOptions, aug: AugmentOptions, seed: number, epoch: number): DecodeAugmentedFn {
  const fn: DecodeAugmentedFn = (p, index) => decodeAugmented(p, decode, aug, augmentRng(seed, epoch, index));
  fn.spec = { decode: { ...decode }, aug: { ...aug }, seed, epoch };
  return fn;
}
