/**
 * The per-image work of a training or evaluation batch, as plain data and one function that does it in whatever
 * thread it runs in (a worker of engine/batch-pool.ts, or the main thread): read the decoded pixels from the
 * decoded-image cache's file (by its descriptor and offset) or decode the file, augment (crop, flip, rotation,
 * colour; seeded per image by augmentRng(seed, epoch, index)) or take the network-size pixels as they are, and
 * write the preprocessed floats into the batch tensor at the image's place. The same code and the same per-image
 * seeds as the main-thread path (engine/image-batches.ts), so the tensor is the same bit for bit.
 */
import { readSync } from 'node:fs';
import { preprocessInto, type PreprocessMode } from '../backbones/preprocess.js';
import { augmentRgb, augmentRng, type AugmentSpec } from '../image/augment.js';
import { decodeBound, decodeImage, decodeRgb, ImageDecodeError, type DecodeOptions } from '../image/decode.js';
import type { RgbImage } from '../image/rgb.js';

/** What every image of a batch goes through. */
export type BatchTask =
  /** Decoded to its own (bounded) size, kept that way in the cache, then augmented to the network's size. */
  | { kind: 'augment'; spec: AugmentSpec; preprocessing: PreprocessMode }
  /** Decoded (and kept in the cache) at the network's size. */
  | { kind: 'input'; decode: DecodeOptions; preprocessing: PreprocessMode };

export interface BatchItem {
  /** Place in the batch tensor. */
  k: number;
  path: string;
  /** Index in the source (seeds the augmentation). */
  index: number;
  /** The decoded pixels in the cache file, when they are there. */
  cached?: { offset: number; width: number; height: number };
  /** Send the decoded pixels back (the cache keeps them). */
  keep: boolean;
}

export interface ItemResult {
  k: number;
  error?: { path: string; reason: string };
  /** The decoded pixels, when the item asked to keep them and they decoded. */
  decoded?: RgbImage;
}

/** The cache key of an item's decoded pixels (the same keys as image-batches' main-thread path). */
export function cacheKey(task: BatchTask, path: string): string {
  if (task.kind === 'augment') return `bounded:${decodeBound(task.spec.decode)}:${task.spec.decode.kernel ?? 'linear'}:${path}`;
  const d = task.decode;
  return `input:${d.width}x${d.height}:${d.resize ?? 'squash'}:${d.kernel ?? 'linear'}:${path}`;
}

function decoded(task: BatchTask, path: string): Promise<RgbImage> {
  if (task.kind === 'augment') return decodeRgb(path, { bound: decodeBound(task.spec.decode), kernel: task.spec.decode.kernel });
  const d = task.decode;
  return decodeImage(path, d).then((data) => ({ data, width: d.width, height: d.height }));
}

function readCached(fd: number | undefined, c: BatchItem['cached']): RgbImage | undefined {
  if (fd === undefined || !c) return undefined;
  const data = new Uint8Array(c.width * c.height * 3);
  const n = readSync(fd, data, 0, data.length, c.offset);
  return n === data.length ? { data, width: c.width, height: c.height } : undefined;
}

/** The network input of one item, preprocessed into `out` at item.k * px. */
export async function makeItem(task: BatchTask, item: BatchItem, out: Float32Array, px: number, fd: number | undefined): Promise<ItemResult> {
  try {
    let img = readCached(fd, item.cached);
    let keep: RgbImage | undefined;
    if (!img) {
      img = await decoded(task, item.path);
      // a copy of its own, so that it can be transferred whatever buffer the decoder returned
      if (item.keep) keep = { data: img.data.slice(0, img.width * img.height * 3), width: img.width, height: img.height };
    }
    const s = task.kind === 'augment' ? task.spec : undefined;
    const rgb = s ? augmentRgb(img, s.decode, s.aug, augmentRng(s.seed, s.epoch, item.index)) : img.data;
    preprocessInto(rgb, task.preprocessing, out, item.k * px);
    return { k: item.k, decoded: keep };
  } catch (e) {
    const err = e instanceof ImageDecodeError ? e : new ImageDecodeError(item.path, String(e));
    return { k: item.k, error: { path: err.path, reason: err.reason } };
  }
}

/**
 * Makes the inputs of the items this thread claims from `claims` (shared by every thread working on the batch:
 * Int32 0 counts the items taken, each Atomics.add takes the next one), until none is left. A worker also counts
 * the items it has taken at Int32 `worker` (raised before it tries, lowered when the try finds none left), so the
 * main thread, once it has taken the last item, knows which workers still have items to answer for. `lanes`
 * items are under way at a time, so that decodes (on libuv's threads) overlap; images read back from the
 * decoded-image cache are made one after another, so a thread never holds more than a few items it has not started.
 */
export async function makeClaimed(task: BatchTask, items: BatchItem[], claims: Int32Array, out: Float32Array, px: number, fd: number | undefined, worker?: number, lanes = 4): Promise<ItemResult[]> {
  const results: ItemResult[] = [];
  const take = (): number => {
    if (worker !== undefined) Atomics.add(claims, worker, 1);
    const i = Atomics.add(claims, 0, 1);
    if (i >= items.length && worker !== undefined) Atomics.sub(claims, worker, 1);
    return i;
  };
  const lane = async () => {
    for (let i = take(); i < items.length; i = take()) results.push(await makeItem(task, items[i]!, out, px, fd));
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  return results;
}
