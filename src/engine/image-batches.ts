/**
 * Batches of decoded, preprocessed images for training and evaluation, streamed: the next batch decodes
 * (sharp, libuv threads) while the current one trains, and only these two batches are held in memory.
 * Files that cannot be decoded are reported once and left out of their batch.
 */
import { decodeImage, ImageDecodeError, type ResizeKernel, type ResizeMode } from '../data/decode.js';
import type { SkippedFile } from '../data/discover.js';
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
  /** Optional decoder (data augmentation); gets the item's index in the source. */
  decode?: (path: string, index: number) => Promise<Uint8Array>;
}

export interface ImageBatch {
  /** Preprocessed NHWC images of the samples that decoded. */
  x: Float32Array;
  labels: Int32Array;
  /** Indices into the source of the samples in x. */
  indices: number[];
  failed: SkippedFile[];
}

async function loadBatch(src: BatchSource, order: number[], o: BatchOptions, start: number): Promise<ImageBatch> {
  const [h, w] = o.inputSize;
  const px = h * w * 3;
  const idx = order.slice(start, start + o.batchSize);
  const decoded = await Promise.all(
    idx.map(async (i) => {
      try {
        return o.decode ? await o.decode(src.paths[i]!, i) : await decodeImage(src.paths[i]!, { width: w, height: h, resize: o.resize, kernel: o.kernel });
      } catch (e) {
        return e instanceof ImageDecodeError ? e : new ImageDecodeError(src.paths[i]!, String(e));
      }
    }),
  );
  const okIdx: number[] = [];
  const failed: SkippedFile[] = [];
  decoded.forEach((d, k) => (d instanceof ImageDecodeError ? failed.push({ path: d.path, reason: d.reason }) : okIdx.push(k)));
  const x = new Float32Array(okIdx.length * px);
  const labels = new Int32Array(okIdx.length);
  okIdx.forEach((k, j) => {
    preprocessInto(decoded[k] as Uint8Array, o.preprocessing, x, j * px);
    labels[j] = src.labels[idx[k]!]!;
  });
  return { x, labels, indices: okIdx.map((k) => idx[k]!), failed };
}

/** Yields batches in `order`, decoding the next batch while the caller works on the current one. */
export async function* imageBatches(src: BatchSource, order: number[], o: BatchOptions): AsyncGenerator<ImageBatch> {
  let next: Promise<ImageBatch> | undefined = order.length ? loadBatch(src, order, o, 0) : undefined;
  for (let start = 0; next; start += o.batchSize) {
    const current = await next;
    next = start + o.batchSize < order.length ? loadBatch(src, order, o, start + o.batchSize) : undefined;
    yield current;
  }
}
