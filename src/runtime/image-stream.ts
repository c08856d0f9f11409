/**
 * Streams image files through a model: files are read and decoded (libjpeg-turbo or sharp, on libuv's thread
 * pool) while the previous batch runs, batches are assembled as decodes finish, and no more than a bounded
 * number of decoded images is held at a time. Each decoded image is resized and preprocessed in one
 * WebAssembly pass straight into the batch's input tensor. Unreadable files are reported and skipped; the rest go on.
 */
import { promises as fs } from 'node:fs';
import { decodeForTarget, ImageDecodeError, type TargetImage, type ResizeKernel, type ResizeMode } from '../image/decode.js';
import { decodeViews, type TtaVariant } from '../image/augment.js';
import type { SkippedFile } from '../data/discover.js';
import { preprocessTargetInto, type PreprocessMode } from '../backbones/preprocess.js';
import { sha256 } from '../util/hash.js';
import type { Progress } from '../util/log.js';
import { InterruptedError, stopSignalName } from '../util/interrupt.js';
import type { InferenceRunner } from './inference.js';

export interface ImageStreamOptions {
  inputSize: [number, number];
  preprocessing: PreprocessMode;
  resize: ResizeMode;
  kernel?: ResizeKernel;
  batchSize?: number;
  /** Files being read/decoded at once, plus decoded images waiting for a batch. */
  maxPending?: number;
  progress?: Progress;
  /** How to get a file's content hash (default: read and hash it); may skip reading when the hash is known. */
  hashFile?: (file: string) => Promise<{ hash: string; bytes?: Buffer }>;
  /** Called with the content hash before decoding; a returned vector is used instead of running the model. */
  lookup?: (hash: string) => Promise<Float32Array | undefined>;
  /** Called with each newly computed output row. */
  store?: (hash: string, row: Float32Array) => Promise<void>;
  /** Test-time augmentation: run every image as these views and average the outputs (no cache). */
  variants?: TtaVariant[];
  /**
   * Stops after the current batch: the files being read are let finish, computed rows are stored, and
   * InterruptedError is thrown (its message says how many images were done).
   */
  signal?: AbortSignal;
}

export interface ImageStreamResult {
  /** n * dim values, row i for paths[i]; rows of failed files are zero. */
  outputs: Float32Array;
  dim: number;
  ok: boolean[];
  failed: SkippedFile[];
  fromCache: number;
  computed: number;
  /** Seconds spent inside the model's forward passes. */
  modelSeconds: number;
}

/** The network-size image (large JPEGs via sharp, test-time views), or the decoded image, resized and preprocessed straight into the batch. */
type Decoded = { index: number; hash: string } & TargetImage;

export async function streamImages(paths: string[], runner: InferenceRunner, opts: ImageStreamOptions): Promise<ImageStreamResult> {
  const n = paths.length;
  const dim = runner.outputDim;
  const [h, w] = opts.inputSize;
  const px = h * w * 3;
  const B = Math.max(1, opts.batchSize ?? 32);
  const V = opts.variants?.length ?? 1;
  const views = new Uint8Array(V > 1 ? n : 0);
  const maxPending = Math.max(B * 2, opts.maxPending ?? B * 3);
  const outputs = new Float32Array(n * dim);
  const ok = new Array<boolean>(n).fill(false);
  const failedAt: Array<SkippedFile & { index: number }> = [];
  const ready: Decoded[] = [];
  const writes: Promise<void>[] = [];
  let fromCache = 0;
  let computed = 0;
  let modelSeconds = 0;
  const dopts = { width: w, height: h, resize: opts.resize, kernel: opts.kernel };
  let done = 0;
  const tick = (k = 1) => {
    done += k;
    opts.progress?.tick(k);
  };

  const processOne = async (i: number): Promise<void> => {
    const file = paths[i]!;
    let buf: Buffer | undefined;
    let hash: string;
    try {
      if (opts.hashFile) ({ hash, bytes: buf } = await opts.hashFile(file));
      else {
        buf = await fs.readFile(file);
        hash = sha256(buf);
      }
    } catch (e: any) {
      failedAt.push({ index: i, path: file, reason: e instanceof ImageDecodeError ? e.reason : `cannot read file (${e.code ?? e.message})` });
      tick();
      return;
    }
    const hit = opts.lookup && !opts.variants ? await opts.lookup(hash) : undefined;
    if (hit) {
      outputs.set(hit, i * dim);
      ok[i] = true;
      fromCache++;
      tick();
      return;
    }
    try {
      if (opts.variants) {
        const bytes = buf ?? (await fs.readFile(file));
        // decoded once; every view made from the decoded image
        const views = await decodeViews(bytes, dopts, opts.variants, file);
        for (const rgb of views) ready.push({ index: i, hash, rgb });
      } else {
        ready.push({ index: i, hash, ...(await decodeForTarget(buf ?? file, dopts, file)) });
      }
    } catch (e) {
      failedAt.push({ index: i, path: file, reason: e instanceof ImageDecodeError ? e.reason : String(e) });
      tick();
    }
  };

  // one input buffer, reused: the forward pass is awaited before the next batch is assembled
  let batchBuffer: Float32Array | undefined;
  const runBatch = async (items: Decoded[]): Promise<void> => {
    batchBuffer ??= new Float32Array(Math.min(B, n * V) * px);
    const input = batchBuffer.subarray(0, items.length * px);
    items.forEach((d, k) => preprocessTargetInto(d, dopts, opts.preprocessing, input, k * px));
    const t0 = performance.now();
    const out = await runner.run(input, items.length);
    modelSeconds += (performance.now() - t0) / 1000;
    let finished = 0;
    items.forEach((d, k) => {
      const row = out.slice(k * dim, (k + 1) * dim);
      if (V > 1) {
        for (let j = 0; j < dim; j++) outputs[d.index * dim + j]! += row[j]! / V;
        if (++views[d.index]! < V) return;
      } else {
        outputs.set(row, d.index * dim);
        if (opts.store) writes.push(opts.store(d.hash, row));
      }
      ok[d.index] = true;
      finished++;
    });
    computed += finished;
    tick(finished);
    if (writes.length > 256) await Promise.all(writes.splice(0));
  };

  const inflight = new Set<Promise<void>>();
  let cursor = 0;
  const fill = () => {
    while (cursor < n && inflight.size + ready.length < maxPending) {
      const p: Promise<void> = processOne(cursor++).finally(() => inflight.delete(p));
      inflight.add(p);
    }
  };

  fill();
  while (cursor < n || inflight.size > 0 || ready.length > 0) {
    if (opts.signal?.aborted) {
      cursor = n;
      await Promise.allSettled(inflight);
      await Promise.all(writes);
      throw new InterruptedError(`stopped after ${done} of ${n} images`, stopSignalName(opts.signal));
    }
    const drained = cursor >= n && inflight.size === 0;
    if (ready.length >= B || (drained && ready.length > 0)) {
      const batch = ready.splice(0, B);
      fill();
      await runBatch(batch);
      fill();
    } else if (inflight.size > 0) {
      await Promise.race(inflight);
      fill();
    } else {
      fill();
    }
  }
  await Promise.all(writes);
  const failed = failedAt.sort((a, b) => a.index - b.index).map(({ path, reason }) => ({ path, reason }));
  return { outputs, dim, ok, failed, fromCache, computed, modelSeconds };
}
