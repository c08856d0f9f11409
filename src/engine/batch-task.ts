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
async function makeItem(task: BatchTask, item: BatchItem, out: Float32Array, px: number, fd: number | undefined): Promise<ItemResult> {
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
 * Makes every item's input: the decodes start together (libjpeg-turbo and sharp work on libuv's threads), the
 * augmentation and preprocessing of each runs as its pixels arrive.
 */
export function makeItems(task: BatchTask, items: BatchItem[], out: Float32Array, px: number, fd: number | undefined): Promise<ItemResult[]> {
  return Promise.all(items.map((item) => makeItem(task, item, out, px, fd)));
}
