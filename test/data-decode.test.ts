import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeBmp, encodeBmp } from '../src/image/bmp.js';
import { decodeImage, ImageDecodeError } from '../src/image/decode.js';
import { HYMENOPTERA, hasShared, tmpDir } from './helpers.js';

const SIZE = { width: 16, height: 16 };

function pixel(rgb: Uint8Array, x: number, y: number, w = 16): number[] {
  const o = (y * w + x) * 3;
  return [rgb[o]!, rgb[o + 1]!, rgb[o + 2]!];
}

function near(a: number[], b: number[], tol = 12): boolean {
  return a.every((v, i) => Math.abs(v - b[i]!) <= tol);
}

describe('decodeImage', () => {
  it('gives 3-channel RGB at the requested size from RGB, grayscale, RGBA, 16-bit, CMYK, GIF, WebP and TIFF', async () => {
    const red = { r: 220, g: 20, b: 20 };
    const cases: Array<[string, Buffer]> = [
      ['jpeg', await sharp({ create: { width: 40, height: 30, channels: 3, background: red } }).jpeg().toBuffer()],
      ['gray jpeg', await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 128, g: 128, b: 128 } } }).grayscale().jpeg().toBuffer()],
      ['rgba png', await sharp({ create: { width: 20, height: 20, channels: 4, background: { ...red, alpha: 0.5 } } }).png().toBuffer()],
      ['16-bit png', await sharp({ create: { width: 20, height: 20, channels: 3, background: red } }).toColourspace('rgb16').png().toBuffer()],
      ['cmyk jpeg', await sharp({ create: { width: 20, height: 20, channels: 3, background: red } }).toColourspace('cmyk').jpeg().toBuffer()],
      ['gif', await sharp({ create: { width: 20, height: 20, channels: 3, background: red } }).gif().toBuffer()],
      ['webp', await sharp({ create: { width: 20, height: 20, channels: 3, background: red } }).webp({ lossless: true }).toBuffer()],
      ['tiff', await sharp({ create: { width: 20, height: 20, channels: 3, background: red } }).tiff().toBuffer()],
    ];
    for (const [name, buf] of cases) {
      const rgb = await decodeImage(buf, SIZE, name);
      expect(rgb.length, name).toBe(16 * 16 * 3);
      const p = pixel(rgb, 8, 8);
      if (name === 'gray jpeg') expect(near(p, [128, 128, 128]), `${name}: ${p}`).toBe(true);
      // half-transparent red on white
      else if (name === 'rgba png') expect(near(p, [238, 138, 138], 3), `${name}: ${p}`).toBe(true);
      else expect(near(p, [220, 20, 20], 30), `${name}: ${p}`).toBe(true);
    }
  });

  it('applies EXIF orientation', async () => {
    // 20 wide x 10 high: left half red, right half blue; orientation 6 means "rotate 90° clockwise to display"
    const left = await sharp({ create: { width: 10, height: 10, channels: 3, background: '#f00' } }).png().toBuffer();
    const img = await sharp({ create: { width: 20, height: 10, channels: 3, background: '#00f' } })
      .composite([{ input: left, left: 0, top: 0 }])
      .jpeg({ quality: 100 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const rgb = await decodeImage(img, SIZE);
    // displayed upright: red on top, blue at the bottom
    expect(near(pixel(rgb, 8, 2), [255, 0, 0], 40)).toBe(true);
    expect(near(pixel(rgb, 8, 13), [0, 0, 255], 40)).toBe(true);
  });

  it('squash stretches; center-crop keeps the middle', async () => {
    // 30x10: red | green | blue thirds
    const third = (c: string) => sharp({ create: { width: 10, height: 10, channels: 3, background: c } }).png().toBuffer();
    const img = await sharp({ create: { width: 30, height: 10, channels: 3, background: '#000' } })
      .composite([
        { input: await third('#f00'), left: 0, top: 0 },
        { input: await third('#0f0'), left: 10, top: 0 },
        { input: await third('#00f'), left: 20, top: 0 },
      ])
      .png()
      .toBuffer();
    const squash = await decodeImage(img, { ...SIZE, resize: 'squash' });
    expect(near(pixel(squash, 1, 8), [255, 0, 0], 40)).toBe(true);
    expect(near(pixel(squash, 14, 8), [0, 0, 255], 40)).toBe(true);
    const crop = await decodeImage(img, { ...SIZE, resize: 'center-crop' });
    expect(near(pixel(crop, 1, 8), [0, 255, 0], 40)).toBe(true);
    expect(near(pixel(crop, 14, 8), [0, 255, 0], 40)).toBe(true);
  });

  it('decodes BMP files (which sharp cannot) through tlearn\'s own decoder', async () => {
    const data = new Uint8Array(5 * 3 * 3);
    for (let i = 0; i < 15; i++) data.set([i * 10, 255 - i * 10, 7], i * 3);
    const bmp = encodeBmp(data, 5, 3);
    const back = decodeBmp(bmp);
    expect(back.width).toBe(5);
    expect(back.height).toBe(3);
    expect(Array.from(back.data)).toEqual(Array.from(data));
    const rgb = await decodeImage(bmp, { width: 5, height: 3 });
    expect(Array.from(rgb)).toEqual(Array.from(data));
  });

  it('reports unreadable files with a reason', async () => {
    const dir = tmpDir();
    const good = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#345' } }).jpeg().toBuffer();
    await fs.writeFile(path.join(dir, 'truncated.jpg'), good.subarray(0, good.length >> 1));
    await fs.writeFile(path.join(dir, 'text.jpg'), 'this is not an image');
    await fs.writeFile(path.join(dir, 'empty.png'), '');
    for (const [f, re] of [
      ['truncated.jpg', /not a readable image \(truncated JPEG: the file ends before its end-of-image marker\)/],
      ['text.jpg', /not a readable image \(unsupported image format\)/],
      ['empty.png', /empty file/],
      ['missing.jpg', /cannot read file \(ENOENT\)/],
    ] as const) {
      const err = await decodeImage(path.join(dir, f), SIZE).catch((e) => e);
      expect(err, f).toBeInstanceOf(ImageDecodeError);
      expect(err.path).toBe(path.join(dir, f));
      expect(err.reason, f).toMatch(re);
    }
  });

  it.runIf(hasShared(HYMENOPTERA, 'ants/bees decode test'))('decodes the ants/bees photos, including the GIF placeholder and big progressive JPEGs', async () => {
    const gif = await decodeImage(path.join(HYMENOPTERA, 'train/ants/imageNotFound.gif'), { width: 224, height: 224 });
    expect(gif.length).toBe(224 * 224 * 3);
    const dir = path.join(HYMENOPTERA, 'train/bees');
    for (const f of (await fs.readdir(dir)).slice(0, 20)) {
      expect((await decodeImage(path.join(dir, f), { width: 224, height: 224 })).length).toBe(224 * 224 * 3);
    }
  });
});
