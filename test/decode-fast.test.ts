import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeBound, decodeImage, decodeRgb, type DecodeOptions } from '../src/image/decode.js';
import { decodeResizedBySharp } from '../src/image/sharp-resize.js';
import { readJpegInfo } from '../src/image/jpeg-header.js';
import { jpegTurboAvailable } from '../src/image/jpeg-turbo.js';
import { resampleRgb, resampleRgbInto } from '../src/image/resample.js';
import { preprocessAffine, preprocessInto, preprocessTable, PREPROCESS_MODES } from '../src/backbones/preprocess.js';
import { orientRgb } from '../src/image/rgb.js';
import { ROOT } from './helpers.js';

/** Smooth, photo-like packed RGB (gradients and waves), different in every corner. */
function photoRgb(w: number, h: number, seed = 1): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      out[o] = (255 * x) / w;
      out[o + 1] = 128 + 100 * Math.sin((x + seed * 7) / 9) * Math.cos(y / 13);
      out[o + 2] = (255 * y) / h;
    }
  return out;
}

const jpeg = (w: number, h: number, seed = 1) => sharp(photoRgb(w, h, seed), { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 92 });

function diff(a: Uint8Array, b: Uint8Array): { max: number; mean: number } {
  expect(a.length).toBe(b.length);
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    sum += d;
    if (d > max) max = d;
  }
  return { max, mean: sum / a.length };
}

describe('fast decoder (libjpeg-turbo + WebAssembly resampling)', () => {
  it('loads its native binding here', () => {
    expect(jpegTurboAvailable()).toBe(true);
  });

  it('reads JPEG headers: size, components, EXIF orientation, ICC profile', async () => {
    const plain = await jpeg(40, 30).toBuffer();
    expect(readJpegInfo(plain)).toEqual({ width: 40, height: 30, components: 3, precision: 8, orientation: 1, hasIcc: false });
    const gray = await sharp(photoRgb(40, 30), { raw: { width: 40, height: 30, channels: 3 } }).toColourspace('b-w').jpeg().toBuffer();
    expect(readJpegInfo(gray)?.components).toBe(1);
    expect(readJpegInfo(await jpeg(40, 30).withMetadata({ orientation: 6 }).toBuffer())?.orientation).toBe(6);
    expect(readJpegInfo(await jpeg(40, 30).withIccProfile('p3').toBuffer())?.hasIcc).toBe(true);
    expect(readJpegInfo(await jpeg(40, 30).toColourspace('cmyk').toBuffer())?.components).toBe(4);
    expect(readJpegInfo(await sharp(photoRgb(8, 8), { raw: { width: 8, height: 8, channels: 3 } }).png().toBuffer())).toBeUndefined();
    expect(readJpegInfo(plain.subarray(0, 20))).toBeUndefined();
  });

  it('resamples like sharp resize (linear): within 2 levels, enlarging, shrinking and mixed, squash and centre crop', async () => {
    // (large shrinks block-average first; sizes that do not divide by the block leave a partial last block)
    for (const [sw, sh, dw, dh] of [[300, 200, 224, 224], [200, 300, 224, 224], [100, 100, 224, 224], [224, 224, 224, 224], [600, 600, 224, 224], [300, 224, 224, 224], [301, 199, 224, 224], [250, 333, 224, 224], [1000, 800, 224, 224], [1003, 801, 224, 224], [223, 301, 64, 48], [900, 640, 64, 48]] as const) {
      const src = photoRgb(sw, sh);
      for (const mode of ['squash', 'center-crop'] as const) {
        const ref = await sharp(src, { raw: { width: sw, height: sh, channels: 3 } }).resize(dw, dh, { fit: mode === 'squash' ? 'fill' : 'cover', kernel: 'linear' }).raw().toBuffer();
        const d = diff(resampleRgb({ data: src, width: sw, height: sh }, dw, dh, 'linear', mode), ref);
        expect(d.max, `${sw}x${sh} -> ${dw}x${dh} ${mode}`).toBeLessThanOrEqual(2);
      }
    }
  });

  it('resizes and preprocesses into a float tensor in one pass, bit for bit what preprocessing the resized bytes gives', () => {
    for (const [sw, sh] of [[300, 200], [224, 224], [100, 130], [640, 480]] as const) {
      const src = { data: photoRgb(sw, sh), width: sw, height: sh };
      for (const mode of PREPROCESS_MODES)
        for (const resize of ['squash', 'center-crop'] as const) {
          const a = new Float32Array(224 * 224 * 3 + 7).fill(9);
          const b = new Float32Array(224 * 224 * 3 + 7).fill(9);
          preprocessInto(resampleRgb(src, 224, 224, 'linear', resize), mode, a, 4);
          resampleRgbInto(src, 224, 224, 'linear', resize, preprocessTable(mode), preprocessAffine(mode).bgr, b, 4);
          expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer)), `${sw}x${sh} ${mode} ${resize}`).toBe(true);
        }
    }
  });

  it('refuses bad sizes and rectangles outside the image instead of reading past it', () => {
    const src = { data: photoRgb(30, 20), width: 30, height: 20 };
    expect(() => resampleRgb(src, 10, 10, 'linear', 'squash', { left: 25, top: 0, width: 10, height: 5 })).toThrow(/not inside the 30x20 image/);
    expect(() => resampleRgb({ ...src, data: src.data.subarray(0, 100) }, 10, 10)).toThrow(/needs 1800 bytes, got 100/);
    expect(() => resampleRgb(src, 0, 10)).toThrow(/bad output size/);
    expect(() => resampleRgbInto(src, 10, 10, 'linear', 'squash', preprocessTable('tf'), false, new Float32Array(299))).toThrow(/do not fit/);
    expect(resampleRgb(src, 10, 10, 'linear', 'squash', { left: 20, top: 10, width: 10, height: 10 })).toHaveLength(300);
  });

  it('gives what the previous sharp decoder gave, within a few levels (JPEG DCT rounding), at every size and in both resize modes', async () => {
    for (const [w, h] of [[300, 200], [200, 300], [120, 90], [224, 224], [640, 480]] as const) {
      const buf = await jpeg(w, h).toBuffer();
      for (const resize of ['squash', 'center-crop'] as const) {
        const o: DecodeOptions = { width: 224, height: 224, resize };
        const d = diff(await decodeImage(buf, o), await decodeResizedBySharp(buf, o, 'x'));
        expect(d.max, `${w}x${h} ${resize}`).toBeLessThanOrEqual(8);
        expect(d.mean, `${w}x${h} ${resize}`).toBeLessThan(1.5);
      }
    }
    const gray = await sharp(photoRgb(300, 200), { raw: { width: 300, height: 200, channels: 3 } }).toColourspace('b-w').jpeg().toBuffer();
    const g = await decodeImage(gray, { width: 224, height: 224 });
    expect(diff(g, await decodeResizedBySharp(gray, { width: 224, height: 224 }, 'x')).max).toBeLessThanOrEqual(8);
    expect(g[3000]).toBe(g[3001]); // grey: R = G = B
  });

  it('applies all eight EXIF orientations as sharp does', async () => {
    const base = await jpeg(60, 40, 3).toBuffer();
    const upright = await sharp(base).raw().toBuffer();
    for (let orientation = 1; orientation <= 8; orientation++) {
      const buf = await sharp(base).withMetadata({ orientation }).jpeg({ quality: 92 }).toBuffer();
      const ref = await sharp(buf).autoOrient().raw().toBuffer({ resolveWithObject: true });
      const img = await decodeRgb(buf);
      expect([img.width, img.height], `orientation ${orientation}`).toEqual([ref.info.width, ref.info.height]);
      expect(diff(img.data, ref.data).max, `orientation ${orientation}`).toBeLessThanOrEqual(8);
    }
    expect(orientRgb({ data: upright, width: 60, height: 40 }, 1).data).toBe(upright);
  });

  it('leaves JPEGs with a colour profile, CMYK JPEGs and other formats to sharp, converting to sRGB as before', async () => {
    const cases = [await jpeg(80, 60).withIccProfile('p3').toBuffer(), await jpeg(80, 60).toColourspace('cmyk').toBuffer(), await jpeg(80, 60).png().toBuffer(), await jpeg(80, 60).webp({ lossless: true }).toBuffer()];
    for (const buf of cases) {
      const o: DecodeOptions = { width: 64, height: 64 };
      expect(diff(await decodeImage(buf, o), await decodeResizedBySharp(buf, o, 'x')).max).toBeLessThanOrEqual(3);
    }
  });

  it('decodes JPEGs larger than twice the target in one sharp pipeline (shrink-on-load), and to the bound for augmentation', async () => {
    const big = await jpeg(1600, 1200).toBuffer();
    const o = { width: 224, height: 224 };
    expect(decodeBound(o)).toBe(448);
    // decodeImage: exactly the legacy pipeline for these (one resize, libjpeg's shrink-on-load)
    expect(Buffer.from(await decodeImage(big, o)).equals(Buffer.from(await decodeResizedBySharp(big, o, 'x')))).toBe(true);
    // stage 1 for augmentation: shrunk to the bound on the short side, aspect kept
    const img = await decodeRgb(big, { bound: decodeBound(o) });
    expect([img.width, img.height]).toEqual([597, 448]);
    // small images are left at their own size
    expect(await decodeRgb(await jpeg(300, 200).toBuffer(), { bound: 448 })).toMatchObject({ width: 300, height: 200 });
    // other formats are decoded at their own size and resized once: within 2 levels of sharp even for big shrinks
    const png = await jpeg(900, 640).png().toBuffer();
    expect(diff(await decodeImage(png, { width: 64, height: 48 }), await decodeResizedBySharp(png, { width: 64, height: 48 }, 'x')).max).toBeLessThanOrEqual(2);
  });

  it('the committed WebAssembly module is a build of wasm/resample.ts', async () => {
    const { execFile } = await import('node:child_process');
    const r = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile(process.execPath, [path.join(ROOT, 'scripts/build-wasm.mjs'), '--check'], (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: stdout + stderr })),
    );
    expect(r, r.out).toMatchObject({ code: 0 });
  });
});
