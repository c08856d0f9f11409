/**
 * Batches of decoded, preprocessed images for training and evaluation, streamed: the next batch decodes
 * (libjpeg-turbo or sharp on libuv threads) while the current one trains, and only these two batches are held
 * in memory (the waiting one as bytes). With a decoded-image cache, each image is decoded once per run and later epochs start from the
 * kept pixels. Files that cannot be decoded are reported once and left out of their batch.
 */
import type { DecodedImageCache } from '../image/decoded-cache.js';
import { decodeBound, decodeImage, decodeRgb, ImageDecodeError, type DecodeOptions, type ResizeKernel, type ResizeMode } from '../image/decode.js';
import type { SkippedFile } from '../data/discover.js';
import type { RgbImage } from '../image/rgb.js';
import { preprocessInto, type PreprocessMode } from '../backbones/preprocess.js';

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
  decode?: (path: string, index: number) => Promise<Uint8Array>;
  /** Decoded images kept across epochs: plain inputs are kept at the network's size, augmented ones before it. */
  cache?: DecodedImageCache;
  /** With `cache`: makes the network input from an image decoded to its own (bounded) size. */
  augment?: (img: RgbImage, index: number) => Uint8Array;
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
