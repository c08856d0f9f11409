import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { augmentRgb, augmentRng, DEFAULT_AUGMENT } from '../src/image/augment.js';
import { DecodedImageCache } from '../src/image/decoded-cache.js';
import { decodeBound, decodeRgb } from '../src/image/decode.js';
import { loadImageFolder } from '../src/data/discover.js';
import { imageBatches, type BatchOptions, type BatchSource } from '../src/engine/image-batches.js';
import { makeDataset, tmpDir } from './helpers.js';

async function dataset(): Promise<BatchSource> {
  const dir = await makeDataset(tmpDir(), { classes: { red: 5, green: 5 }, size: 70 });
  await makeDataset(path.join(dir, 'png'), { classes: { red: 3 }, ext: '.png', size: 50 });
  const ds = await loadImageFolder(dir);
  const paths = ds.images.map((i) => i.path);
  const broken = path.join(dir, 'red', 'broken.jpg');
  await fs.writeFile(broken, 'not an image');
  return { paths: [...paths, broken], labels: [...ds.images.map((i) => i.label), 0] };
}

/** Every batch's network input, labels, indices and failures, copied (the generator reuses its buffers). */
async function epoch(src: BatchSource, order: number[], o: BatchOptions) {
  const out = [];
  for await (const b of imageBatches(src, order, o)) out.push({ x: Array.from(b.x), labels: Array.from(b.labels), indices: b.indices, failed: b.failed });
  return out;
}

describe('decoded-image cache for multi-epoch training', () => {
  const opts: BatchOptions = { inputSize: [32, 40], preprocessing: 'tf', resize: 'squash', batchSize: 4 };

  it('gives bit-identical network input to a direct decode (no augmentation), epoch after epoch, and reads back instead of decoding', async () => {
    const src = await dataset();
    const n = src.paths.length;
    const order = [...Array(n).keys()].reverse();
    const direct = await epoch(src, order, opts);
    const dir = tmpDir();
    const cache = await DecodedImageCache.create({ dir });
    expect(await fs.readdir(dir)).toEqual([]); // the scratch file is unlinked as soon as it is open
    const first = await epoch(src, order, { ...opts, cache });
    const second = await epoch(src, [...Array(n).keys()], { ...opts, cache });
    expect(first).toEqual(direct);
    // same images in another order: the same inputs, from the file
    const byIndex = (e: typeof direct) => new Map(e.flatMap((b) => b.indices.map((i, k) => [i, b.x.slice(k * 32 * 40 * 3, (k + 1) * 32 * 40 * 3)] as const)));
    expect(byIndex(second)).toEqual(byIndex(direct));
    expect(second.flatMap((b) => b.failed.map((f) => path.basename(f.path)))).toEqual(['broken.jpg']);
    expect(cache.stats).toMatchObject({ images: n - 1, hits: n - 1, misses: n + 1, notKept: 0 });
    expect(cache.stats.bytes).toBe((n - 1) * 32 * 40 * 3);
    await cache.close();
  });

  it('keeps augmented images at their decoded size and augments each epoch from them, as from a fresh decode', async () => {
    const src = await dataset();
    const n = src.paths.length - 1;
    const d = { width: 40, height: 32 };
    const cache = await DecodedImageCache.create({ dir: tmpDir() });
    const o = (e: number): BatchOptions => ({ ...opts, cache, augment: (img, i) => augmentRgb(img, d, DEFAULT_AUGMENT, augmentRng(7, e, i)) });
    const order = [...Array(n).keys()];
    const e1 = await epoch(src, order, o(1));
    const e2 = await epoch(src, order, o(2));
    expect(cache.stats).toMatchObject({ images: n, hits: n, misses: n });
    const expected = async (e: number) => {
      const x: number[] = [];
      for (const i of order) {
        const rgb = augmentRgb(await decodeRgb(src.paths[i]!, { bound: decodeBound(d) }), d, DEFAULT_AUGMENT, augmentRng(7, e, i));
        x.push(...Array.from(rgb, (v) => Math.fround(v / 127.5 - 1)));
      }
      return x;
    };
    expect(e1.flatMap((b) => b.x)).toEqual(await expected(1));
    expect(e2.flatMap((b) => b.x)).toEqual(await expected(2));
    expect(e2.flatMap((b) => b.x)).not.toEqual(e1.flatMap((b) => b.x));
    await cache.close();
  });

  it('stops growing at its size cap (images past it are decoded again) and can be turned off', async () => {
    const src = await dataset();
    const n = src.paths.length;
    const order = [...Array(n).keys()];
    const direct = await epoch(src, order, opts);
    const small = await DecodedImageCache.create({ dir: tmpDir(), maxBytes: 3 * 32 * 40 * 3 });
    expect(await epoch(src, order, { ...opts, cache: small })).toEqual(direct);
    expect(await epoch(src, order, { ...opts, cache: small })).toEqual(direct);
    // 3 images fit; the other n - 4 decodable ones (and the broken file) are decoded in both epochs
    expect(small.stats).toMatchObject({ images: 3, hits: 3, notKept: n - 4, misses: n + (n - 3) });
    await small.close();
    process.env.TLEARN_DECODED_CACHE_MB = '0';
    try {
      const off = await DecodedImageCache.create({ dir: tmpDir() });
      expect(await epoch(src, order, { ...opts, cache: off })).toEqual(direct);
      expect(off.stats.images).toBe(0);
      await off.close();
      process.env.TLEARN_DECODED_CACHE_MB = 'lots';
      await expect(DecodedImageCache.create({ dir: tmpDir() })).rejects.toThrow(/TLEARN_DECODED_CACHE_MB must be a number of megabytes/);
    } finally {
      delete process.env.TLEARN_DECODED_CACHE_MB;
    }
  });
});
