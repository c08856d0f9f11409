/**
 * The previous decoder, kept selectable with TLEARN_DECODER=legacy so that one benchmark run can measure it
 * beside the new one: every image makes one trip through a sharp (libvips) pipeline that decodes, orients,
 * crops, resizes and converts it. Augmentation and test-time views the same way.
 */
import sharp, { type Sharp } from 'sharp';
import type { AugmentDraw, TtaVariant } from './augment.js';
import { decodeBmp } from './bmp.js';
import type { DecodeOptions } from './decode.js';
import { ImageDecodeError, readImageBytes, withDecodeErrors } from './decode-errors.js';
import { isBmp, openImage, toRgb } from './sharp-image.js';
import { transformRgb } from './transform-rgb.js';

export async function decodeImageLegacy(src: string | Uint8Array, opts: DecodeOptions, label: string): Promise<Uint8Array> {
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

/** Decodes an image with an augmentation drawn for its size (sharp extract/resize/flop, then transformRgb). */
export async function decodeAugmentedLegacy(src: string | Uint8Array, o: DecodeOptions, draw: (width: number, height: number) => AugmentDraw, label: string): Promise<Uint8Array> {
  const buf = await readImageBytes(src, label);
  return withDecodeErrors(label, buf, async () => {
    const s = await source(buf);
    const { box, angle, flip, colour } = draw(s.width, s.height);
    let p = s.img();
    if (box.width !== s.width || box.height !== s.height) p = p.extract(box);
    const fit = (o.resize ?? 'squash') === 'squash' ? 'fill' : 'cover';
    if (!angle && !colour) {
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
    transformRgb(big, S, out, o.width, o.height, { angle, flip, ...(colour ?? { brightness: 1, contrast: 1, saturation: 1 }) });
    return out;
  });
}

export async function decodeVariantLegacy(src: string | Uint8Array, o: DecodeOptions, v: TtaVariant, label: string): Promise<Uint8Array> {
  const buf = await readImageBytes(src, label);
  return withDecodeErrors(label, buf, async () => {
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
