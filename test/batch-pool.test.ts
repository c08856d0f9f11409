/**
 * The batch pool (engine/batch-pool.ts): batches made by worker threads are the same, bit for bit, as the ones
 * the main thread makes (TLEARN_BATCH_WORKERS=0), with and without augmentation and the decoded-image cache, with
 * a broken file in the middle; a stopped consumer leaves no worker reading the cache file; bad settings are
 * refused with a clear message.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { augmentFunction, augmentRgb, augmentRng, decodeAugmentedFunction, DEFAULT_AUGMENT } from '../src/image/augment.js';
import { DecodedImageCache } from '../src/image/decoded-cache.js';
import { loadImageFolder } from '../src/data/discover.js';
import { imageBatches, type BatchOptions, type BatchSource } from '../src/engine/image-batches.js';
import { batchPool, batchWorkerNice, batchWorkers, BatchWorkersError, defaultBatchWorkers } from '../src/engine/batch-pool.js';
import { lowerThisThreadsPriority } from '../src/engine/thread-priority.js';
import { transformRgb, transformRgbReference } from '../src/image/transform-rgb.js';
import { Rng } from '../src/util/rng.js';
import { makeDataset, tmpDir } from './helpers.js';

const saved = { workers: process.env.TLEARN_BATCH_WORKERS, nice: process.env.TLEARN_BATCH_NICE };
afterEach(() => {
  if (saved.workers === undefined) delete process.env.TLEARN_BATCH_WORKERS;
  else process.env.TLEARN_BATCH_WORKERS = saved.workers;
  if (saved.nice === undefined) delete process.env.TLEARN_BATCH_NICE;
  else process.env.TLEARN_BATCH_NICE = saved.nice;
});

async function dataset(): Promise<BatchSource> {
  const dir = await makeDataset(tmpDir(), { classes: { red: 6, green: 6, blue: 5 }, size: 70 });
  await makeDataset(path.join(dir, 'png'), { classes: { red: 3 }, ext: '.png', size: 50 });
  const ds = await loadImageFolder(dir);
  const broken = path.join(dir, 'red', 'broken.jpg');
  await fs.writeFile(broken, 'not an image');
  const paths = ds.images.map((i) => i.path);
  const labels = ds.images.map((i) => i.label);
  // the broken file in the middle, so that the images after it move up in its batch
  return { paths: [...paths.slice(0, 7), broken, ...paths.slice(7)], labels: [...labels.slice(0, 7), 1, ...labels.slice(7)] };
}

/** Every batch's network input (bytes of the floats), labels, indices and failures, copied; `pause` ms after each, as a training step would take. */
async function epoch(src: BatchSource, order: number[], o: BatchOptions, pause = 0) {
  const out = [];
  for await (const b of imageBatches(src, order, o)) {
    out.push({ x: Buffer.from(b.x.buffer, b.x.byteOffset, b.x.byteLength).toString('base64'), labels: Array.from(b.labels), indices: b.indices, failed: b.failed });
    if (pause) await new Promise((r) => setTimeout(r, pause));
  }
  return out;
}

const opts: BatchOptions = { inputSize: [32, 40], preprocessing: 'tf', resize: 'squash', batchSize: 5 };
const decode = { width: 40, height: 32, resize: 'squash' as const };

/** Two epochs of each kind of batch, made with `workers` worker threads (0: the main thread). */
async function epochs(src: BatchSource, workers: string) {
  process.env.TLEARN_BATCH_WORKERS = workers;
  await batchPool()?.close();
  if (batchPool()) batchPool()!.items = 0;
  const n = src.paths.length;
  const order = [...Array(n).keys()].reverse();
  const cache = await DecodedImageCache.create({ dir: tmpDir() });
  const plainCache = await DecodedImageCache.create({ dir: tmpDir() });
  const r = {
    augmented: [
      await epoch(src, order, { ...opts, cache, augment: augmentFunction(decode, DEFAULT_AUGMENT, 7, 1) }),
      await epoch(src, [...Array(n).keys()], { ...opts, cache, augment: augmentFunction(decode, DEFAULT_AUGMENT, 7, 2) }),
    ],
    plainCached: [await epoch(src, order, { ...opts, cache: plainCache }), await epoch(src, order, { ...opts, cache: plainCache })],
    plain: await epoch(src, order, { ...opts, preprocessing: 'caffe' }),
    decodeAugmented: await epoch(src, order, { ...opts, decode: decodeAugmentedFunction(decode, { crop: 0.7, flip: true, rotate: 20, color: 0.3 }, 3, 4) }),
    stats: [{ ...cache.stats }, { ...plainCache.stats }],
  };
  // the workers made them (none with 0): 2 + 2 + 1 + 1 epochs of n images
  expect(workers === '0' ? batchPool() : batchPool()!.items).toBe(workers === '0' ? undefined : 6 * n);
  await cache.close();
  await plainCache.close();
  return r;
}

describe('batch pool: the per-image work of a batch in worker threads', () => {
  it('makes the same batches, bit for bit, as the main thread, with one or two workers; a broken file is left out in its place', async () => {
    const src = await dataset();
    const main = await epochs(src, '0');
    const one = await epochs(src, '1');
    const two = await epochs(src, '2');
    expect(one).toEqual(main);
    expect(two).toEqual(main);
    // the broken file failed in every kind of batch, the others moved up in their batch
    for (const e of [main.augmented[0]!, main.augmented[1]!, main.plain, main.decodeAugmented]) {
      expect(e.flatMap((b) => b.failed.map((f) => path.basename(f.path)))).toEqual(['broken.jpg']);
      expect(e.flatMap((b) => b.indices).sort((a, b) => a - b)).toEqual([...Array(src.paths.length).keys()].filter((i) => i !== 7));
    }
    expect(main.augmented[1]!.flatMap((b) => b.indices)).toEqual([...Array(src.paths.length).keys()].filter((i) => i !== 7));
    // two augmented epochs differ; the second read every image back from the cache instead of decoding
    expect(main.augmented[1]).not.toEqual(main.augmented[0]);
    const n = src.paths.length;
    expect(one.stats[0]).toMatchObject({ images: n - 1, hits: n - 1 });
    expect(one.stats[1]).toMatchObject({ images: n - 1, hits: n - 1 });
    expect(one.stats).toEqual(main.stats);
  }, 60_000);

  it('when the workers are busy elsewhere, the main thread makes every image of the batch it needs, the same bit for bit', async () => {
    const src = await dataset();
    const n = src.paths.length;
    const order = [...Array(n).keys()];
    // the workers at the main thread's priority, so that they surely get the pauses (a training step's time)
    process.env.TLEARN_BATCH_NICE = '0';
    const run = async (workers: string) => {
      process.env.TLEARN_BATCH_WORKERS = workers;
      const cache = await DecodedImageCache.create({ dir: tmpDir() });
      const out = [
        await epoch(src, order, { ...opts, cache, augment: augmentFunction(decode, DEFAULT_AUGMENT, 5, 1) }, 100),
        await epoch(src, order, { ...opts, cache, augment: augmentFunction(decode, DEFAULT_AUGMENT, 5, 2) }, 100),
      ];
      await cache.close();
      return out;
    };
    const main = await run('0');
    const pool = (process.env.TLEARN_BATCH_WORKERS = '2', batchPool()!);
    await pool.close();
    const release = pool.hold();
    const before = { items: pool.items, byCaller: pool.madeByCaller };
    try {
      expect(await run('2')).toEqual(main);
    } finally {
      release();
    }
    // every image handed to the pool was made by the main thread: both workers were held
    expect(pool.items - before.items).toBe(2 * n);
    expect(pool.madeByCaller - before.byCaller).toBe(2 * n);
    // released, the workers make images of the next batches again while the consumer pauses (how many depends on
    // how busy the machine is: the main thread takes any image not ready when it needs it), and the batches stay the same
    expect(await run('2')).toEqual(main);
    expect(pool.items - before.items).toBe(4 * n);
    const byWorkers = 2 * n - (pool.madeByCaller - before.byCaller - 2 * n);
    expect(byWorkers).toBeGreaterThan(0);
  }, 60_000);

  it('runs its workers at a low priority on Linux without touching the main thread, and refuses a bad TLEARN_BATCH_NICE', async () => {
    expect(batchWorkerNice()).toBe(saved.nice === undefined ? 19 : Number(saved.nice));
    process.env.TLEARN_BATCH_NICE = '0';
    expect(batchWorkerNice()).toBe(0);
    for (const bad of ['-1', '20', '2.5', 'low']) {
      process.env.TLEARN_BATCH_NICE = bad;
      expect(() => batchWorkerNice()).toThrow(/TLEARN_BATCH_NICE must be a whole number of nice steps in 0\.\.19 below the main thread/);
    }
    expect(lowerThisThreadsPriority(0)).toBeUndefined();
    if (process.platform !== 'linux') return;
    const os = await import('node:os');
    const mainNice = os.getPriority();
    // the nice value of each of this process's threads (field 19 of /proc/self/task/<tid>/stat)
    const niceOfThreads = async () => {
      const tids = await fs.readdir('/proc/self/task');
      const stats = await Promise.all(tids.map((t) => fs.readFile(`/proc/self/task/${t}/stat`, 'utf8').catch(() => '')));
      return stats.filter(Boolean).map((st) => Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[16]));
    };
    delete process.env.TLEARN_BATCH_NICE;
    process.env.TLEARN_BATCH_WORKERS = '2';
    // no pool threads left from earlier tests: closed, and given a moment to end
    await batchPool()!.close();
    await new Promise((r) => setTimeout(r, 300));
    // the workers go 19 steps below the main thread, at most to 19 (a suite run under `nice -n -10` puts them at 9)
    const workerNice = Math.min(19, mainNice + 19);
    const before = (await niceOfThreads()).filter((n) => n === workerNice).length;
    const src = await dataset();
    await epoch(src, [0, 1, 2, 3, 4, 5], { ...opts, augment: undefined, decode: decodeAugmentedFunction(decode, DEFAULT_AUGMENT, 1, 1) });
    // two more threads at the workers' priority once they have loaded: the pool's workers
    const lowered = async () => (await niceOfThreads()).filter((n) => n === workerNice).length - before;
    const want = workerNice === mainNice ? 0 : 2;
    for (let t = 0; t < 200 && (await lowered()) < want; t++) await new Promise((r) => setTimeout(r, 100));
    expect(await lowered()).toBe(want);
    expect(os.getPriority()).toBe(mainNice);
    await batchPool()!.close();
  });

  it('an augmented input is what augmentRgb makes from the decoded image with the per-image generator', async () => {
    process.env.TLEARN_BATCH_WORKERS = '1';
    const src = await dataset();
    const cache = await DecodedImageCache.create({ dir: tmpDir() });
    const aug = augmentFunction(decode, DEFAULT_AUGMENT, 11, 3);
    const [b] = await epoch(src, [0], { ...opts, cache, augment: aug });
    const { decodeRgb, decodeBound } = await import('../src/image/decode.js');
    const img = await decodeRgb(src.paths[0]!, { bound: decodeBound(decode) });
    const { preprocess } = await import('../src/backbones/preprocess.js');
    const want = preprocess(augmentRgb(img, decode, DEFAULT_AUGMENT, augmentRng(11, 3, 0)), 'tf');
    expect(b!.x).toBe(Buffer.from(want.buffer).toString('base64'));
    await cache.close();
  });

  it('a consumer that stops early waits for the batch being made, so the cache file can close under it', async () => {
    process.env.TLEARN_BATCH_WORKERS = '1';
    const src = await dataset();
    const cache = await DecodedImageCache.create({ dir: tmpDir() });
    const augment = augmentFunction(decode, DEFAULT_AUGMENT, 1, 1);
    for await (const _ of imageBatches(src, [...Array(src.paths.length).keys()], { ...opts, cache, augment })) break;
    await cache.close();
    // a new run after it works as usual
    const cache2 = await DecodedImageCache.create({ dir: tmpDir() });
    const out = await epoch(src, [0, 1, 2], { ...opts, cache: cache2, augment });
    expect(out[0]!.indices).toEqual([0, 1, 2]);
    await cache2.close();
  });

  it('the WebAssembly rotation + flip + colour pass gives the same bytes as the JavaScript reference', () => {
    const rng = new Rng(9);
    for (let c = 0; c < 40; c++) {
      const w = 20 + Math.floor(rng.next() * 60);
      const h = 20 + Math.floor(rng.next() * 60);
      const angle = c === 0 ? 0 : (rng.next() * 2 - 1) * 45;
      const rad = (Math.abs(angle) * Math.PI) / 180;
      const S = Math.ceil(Math.max(w, h) * (Math.cos(rad) + Math.sin(rad)));
      const src = Uint8Array.from({ length: S * S * 3 }, () => Math.floor(rng.next() * 256));
      const t = { angle, flip: rng.next() < 0.5, brightness: 0.5 + rng.next(), contrast: 0.5 + rng.next(), saturation: 0.5 + rng.next() };
      const want = new Uint8Array(w * h * 3);
      const got = new Uint8Array(w * h * 3);
      transformRgbReference(src, S, want, w, h, t);
      transformRgb(src, S, got, w, h, t);
      expect(Buffer.compare(got, want), `case ${c}: ${JSON.stringify({ w, h, S, ...t })}`).toBe(0);
    }
    expect(() => transformRgb(new Uint8Array(10), 4, new Uint8Array(12), 2, 2, { angle: 0, flip: false, brightness: 1, contrast: 1, saturation: 1 })).toThrow(/needs 4x4 RGB in/);
  });

  it('sizes the pool from the cores, and refuses a bad TLEARN_BATCH_WORKERS with its name and range', () => {
    expect(defaultBatchWorkers(1)).toBe(1);
    expect(defaultBatchWorkers(2)).toBe(1);
    expect(defaultBatchWorkers(8)).toBe(2);
    expect(defaultBatchWorkers(16)).toBe(4);
    process.env.TLEARN_BATCH_WORKERS = '0';
    expect(batchWorkers()).toBe(0);
    for (const bad of ['-1', '1.5', 'many', '65']) {
      process.env.TLEARN_BATCH_WORKERS = bad;
      expect(() => batchWorkers()).toThrow(BatchWorkersError);
      expect(() => batchWorkers()).toThrow(/TLEARN_BATCH_WORKERS must be a whole number of worker threads in 0\.\.64/);
    }
  });
});
