/**
 * Batches of decoded, preprocessed images for training and evaluation, streamed: the next batch is made while the
 * current one trains, and only these two batches are held in memory. With a decoded-image cache, each image is
 * decoded once per run and later epochs start from the kept pixels. Files that cannot be decoded are reported
 * once and left out of their batch.
 *
 * Where what each image goes through can be described as data (a plain decode, the cache, an augmentation made by
 * augmentFunction or decodeAugmentedFunction), the per-image work (read or decode, augment, resize, preprocess
 * into the batch tensor) runs in the batch pool's worker threads (batch-pool.ts), so that it overlaps
 * onnxruntime's step on the main thread; the result is the same bit for bit. Other decoders (any function) run
 * on the main thread as before, and so does everything with TLEARN_BATCH_WORKERS=0.
 */
import type { DecodedImageCache } from '../image/decoded-cache.js';
import { decodeBound, decodeImage, decodeRgb, ImageDecodeError, type DecodeOptions, type ResizeKernel, type ResizeMode } from '../image/decode.js';
import type { SkippedFile } from '../data/discover.js';
import type { RgbImage } from '../image/rgb.js';
import { preprocessInto, type PreprocessMode } from '../backbones/preprocess.js';
import type { AugmentSpec } from '../image/augment.js';
import { batchPool, type BatchPool } from './batch-pool.js';
import { cacheKey, type BatchItem, type BatchTask } from './batch-task.js';

export interface BatchSource {
  paths: string[];
  labels: ArrayLike<number>;
}

export interface BatchOptions {
  inputSize: [number, number];
  preprocessing: PreprocessMode;
  resize: ResizeMode;
  kernel?: ResizeKernel;
  batchSize: number;
  /** Optional decoder (e.g. data augmentation); gets the item's index in the source. Used when `augment` is not given. */
  decode?: ((path: string, index: number) => Promise<Uint8Array>) & { spec?: AugmentSpec };
  /** Decoded images kept across epochs: plain inputs are kept at the network's size, augmented ones before it. */
  cache?: DecodedImageCache;
  /** With `cache`: makes the network input from an image decoded to its own (bounded) size. */
  augment?: ((img: RgbImage, index: number) => Uint8Array) & { spec?: AugmentSpec };
}

export interface ImageBatch {
  /** Preprocessed NHWC images of the samples that decoded (valid until the next batch is requested: the buffer is reused). */
  x: Float32Array;
  labels: Int32Array;
  /** Indices into the source of the samples in x. */
  indices: number[];
  failed: SkippedFile[];
}

/** The network input for item i: from the cache when there is one, else decoded now. */
function input(path: string, i: number, o: BatchOptions): Promise<Uint8Array> {
  const [h, w] = o.inputSize;
  const d: DecodeOptions = { width: w, height: h, resize: o.resize, kernel: o.kernel };
  if (o.cache && o.augment) {
    const augment = o.augment;
    return o.cache.get(`bounded:${decodeBound(d)}:${d.kernel ?? 'linear'}:${path}`, () => decodeRgb(path, { bound: decodeBound(d), kernel: d.kernel })).then((img) => augment(img, i));
  }
  if (o.cache && !o.decode) {
    const key = `input:${w}x${h}:${d.resize ?? 'squash'}:${d.kernel ?? 'linear'}:${path}`;
    return o.cache.get(key, async () => ({ data: await decodeImage(path, d), width: w, height: h })).then((img) => img.data);
  }
  return o.decode ? o.decode(path, i) : decodeImage(path, d);
}

/** A batch decoded to network-size bytes (4x smaller than its float input), waiting for its turn. */
interface Loaded {
  images: Uint8Array[];
  labels: Int32Array;
  indices: number[];
  failed: SkippedFile[];
}

async function loadBatch(src: BatchSource, order: number[], o: BatchOptions, start: number): Promise<Loaded> {
  const idx = order.slice(start, start + o.batchSize);
  const decoded = await Promise.all(
    idx.map(async (i) => {
      try {
        return await input(src.paths[i]!, i, o);
      } catch (e) {
        return e instanceof ImageDecodeError ? e : new ImageDecodeError(src.paths[i]!, String(e));
      }
    }),
  );
  const okIdx: number[] = [];
  const failed: SkippedFile[] = [];
  decoded.forEach((d, k) => (d instanceof ImageDecodeError ? failed.push({ path: d.path, reason: d.reason }) : okIdx.push(k)));
  return { images: okIdx.map((k) => decoded[k] as Uint8Array), labels: Int32Array.from(okIdx, (k) => src.labels[idx[k]!]!), indices: okIdx.map((k) => idx[k]!), failed };
}

/**
 * Yields batches in `order`, decoding the next batch (to bytes) while the caller works on the current one. The
 * float input of every batch is written into one reused buffer, so a batch's `x` is valid until the caller asks
 * for the next batch.
 */
export async function* imageBatches(src: BatchSource, order: number[], o: BatchOptions): AsyncGenerator<ImageBatch> {
  const task = pooledTask(o);
  const pool = task && order.length ? batchPool() : undefined;
  if (task && pool) {
    yield* pooledBatches(src, order, o, task, pool);
    return;
  }
  const px = o.inputSize[0] * o.inputSize[1] * 3;
  const buffer = new Float32Array(Math.min(o.batchSize, order.length) * px);
  let next: Promise<Loaded> | undefined = order.length ? loadBatch(src, order, o, 0) : undefined;
  for (let start = 0; next; start += o.batchSize) {
    const current = await next;
    next = start + o.batchSize < order.length ? loadBatch(src, order, o, start + o.batchSize) : undefined;
    const x = buffer.subarray(0, current.images.length * px);
    current.images.forEach((rgb, j) => preprocessInto(rgb, o.preprocessing, x, j * px));
    yield { x, labels: current.labels, indices: current.indices, failed: current.failed };
  }
}

/** What each image goes through, as data for the pool; undefined when only a function knows (main thread). */
function pooledTask(o: BatchOptions): BatchTask | undefined {
  const [h, w] = o.inputSize;
  if (o.cache && o.augment) return o.augment.spec && { kind: 'augment', spec: o.augment.spec, preprocessing: o.preprocessing };
  if (o.decode) return !o.cache && o.decode.spec ? { kind: 'augment', spec: o.decode.spec, preprocessing: o.preprocessing } : undefined;
  return { kind: 'input', decode: { width: w, height: h, resize: o.resize, kernel: o.kernel }, preprocessing: o.preprocessing };
}

interface PooledBatch {
  labels: Int32Array;
  indices: number[];
  failed: SkippedFile[];
  /** Images in the tensor. */
  n: number;
}

/**
 * One batch made by the pool into `out`: each image's cache entry is looked up (or reserved) here, the workers
 * read, decode, augment and preprocess, and the decoded pixels they send back are kept. Once `wanted` resolves
 * (the caller needs the batch), this thread makes the images no worker has started. Images that failed are left
 * out and the ones after them moved up, as on the main thread.
 */
async function pooledBatch(src: BatchSource, idx: number[], o: BatchOptions, task: BatchTask, pool: BatchPool, out: SharedArrayBuffer, px: number, wanted: Promise<void>): Promise<PooledBatch> {
  const cache = o.cache;
  const keepers = new Map<number, (img: RgbImage | undefined) => void>();
  const items: BatchItem[] = await Promise.all(
    idx.map(async (i, k): Promise<BatchItem> => {
      const path = src.paths[i]!;
      if (!cache) return { k, path, index: i, keep: false };
      const key = cacheKey(task, path);
      const found = await cache.locate(key);
      if (found.entry) return { k, path, index: i, cached: found.entry, keep: false };
      if (found.known) {
        cache.countMiss();
        return { k, path, index: i, keep: false };
      }
      keepers.set(k, cache.reserve(key));
      return { k, path, index: i, keep: true };
    }),
  );
  const run = pool.start(task, items, out, px, cache?.fd);
  await wanted;
  const results = await run.finish().catch((e: unknown) => {
    // no reserved key stays waiting
    for (const give of keepers.values()) give(undefined);
    throw e;
  });
  const failed: SkippedFile[] = [];
  const bad = new Set<number>();
  for (const r of results.sort((a, b) => a.k - b.k)) {
    keepers.get(r.k)?.(r.decoded);
    if (r.error) {
      failed.push(r.error);
      bad.add(r.k);
    }
  }
  const x = new Float32Array(out);
  const okK = idx.map((_, k) => k).filter((k) => !bad.has(k));
  okK.forEach((k, j) => {
    if (k !== j) x.copyWithin(j * px, k * px, (k + 1) * px);
  });
  return { labels: Int32Array.from(okK, (k) => src.labels[idx[k]!]!), indices: okK.map((k) => idx[k]!), failed, n: okK.length };
}

/**
 * imageBatches through the pool: the workers make the next batch into a tensor shared with them while the caller
 * works on the current one, which is a copy in an ordinary buffer (onnxruntime-node refuses tensors on shared
 * memory; copying a scratch batch of 128 images, 77 MB, measured 6 ms of CPU, beside seconds of training). When
 * the caller asks for the next batch, this thread helps make what is left of it.
 */
async function* pooledBatches(src: BatchSource, order: number[], o: BatchOptions, task: BatchTask, pool: BatchPool): AsyncGenerator<ImageBatch> {
  const px = o.inputSize[0] * o.inputSize[1] * 3;
  const shared = new SharedArrayBuffer(Math.min(o.batchSize, order.length) * px * 4);
  const buffer = new Float32Array(shared.byteLength / 4);
  const load = (start: number) => {
    let want = () => {};
    const wanted = new Promise<void>((resolve) => (want = resolve));
    return { batch: pooledBatch(src, order.slice(start, start + o.batchSize), o, task, pool, shared, px, wanted), want };
  };
  let next: { batch: Promise<PooledBatch>; want: () => void } | undefined = load(0);
  try {
    for (let start = 0; next; start += o.batchSize) {
      next.want();
      const current = await next.batch;
      const x = buffer.subarray(0, current.n * px);
      x.set(new Float32Array(shared, 0, current.n * px));
      next = start + o.batchSize < order.length ? load(start + o.batchSize) : undefined;
      yield { x, labels: current.labels, indices: current.indices, failed: current.failed };
    }
  } finally {
    // a stopped consumer: the workers may still be reading the cache file, which the caller closes next
    next?.want();
    await next?.batch.catch(() => undefined);
  }
}
