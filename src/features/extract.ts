/**
 * Feature extraction: every image through the frozen backbone once, the vectors kept in the on-disk cache.
 * A second run over the same images with the same backbone reads the cache and does not run the backbone.
 */
import type { Backbone } from '../backbones/load.js';
import type { TfliteBackboneSpec } from '../backbones/tflite/load.js';
import type { ResizeKernel } from '../image/decode.js';
import type { SkippedFile } from '../data/discover.js';
import { cachedOnnx, createRunner, onnxRunner, type InferenceRunner } from '../runtime/inference.js';
import { describeInt8, int8Model, type Int8Model, type Int8Options } from '../runtime/int8.js';
import { tfliteToOnnx } from '../onnx/tflite/convert.js';
import { streamImages } from '../runtime/image-stream.js';
import type { Logger, Progress } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { sha256 } from '../util/hash.js';
import { extractorKey, FeatureCache, featuresRoot } from './cache.js';
import { ContentHashIndex } from '../data/hash-index.js';
import { InterruptedError } from '../util/interrupt.js';

/** Where an extraction stands: images done (cached and unreadable ones included) of total, computed ones per second, seconds left. */
export interface ExtractProgress {
  label: string;
  done: number;
  total: number;
  cached: number;
  rate: number;
  etaSeconds: number | null;
}

/** A .tflite backbone's feature extractor as ONNX bytes, run as loaded (form, cut, weights). */
export function tfliteFeatureOnnx(spec: TfliteBackboneSpec): Uint8Array {
  const { model, form, cutAt, exactWeights } = spec;
  return tfliteToOnnx(model, { form, output: 'features', cutAt, exactWeights }).bytes;
}

/** The backbone's forward pass: a layers model on onnxruntime (tfjs as fallback), or a .tflite model converted to ONNX. */
export async function backboneRunner(backbone: Backbone, opts: { threads?: number; logger?: Logger } = {}): Promise<InferenceRunner> {
  if (backbone.tflite) return onnxRunner(tfliteFeatureOnnx(backbone.tflite), { inputSize: backbone.inputSize, threads: opts.threads });
  if (!backbone.artifacts) throw new Error(`internal error: backbone ${backbone.source} has no model`);
  return createRunner(backbone.artifacts, { inputSize: backbone.inputSize, cacheKey: backbone.id, threads: opts.threads, logger: opts.logger });
}

export interface FeatureExtractorOptions {
  /** Use the on-disk cache (default true). */
  cache?: boolean;
  batchSize?: number;
  kernel?: ResizeKernel;
  threads?: number;
  /** Draws a progress bar on this logger when there is no `onProgress`. */
  logger?: Logger;
  /** Called as images are done (instead of the logger's bar). */
  onProgress?: (p: ExtractProgress) => void;
  /** Stops after the current batch with InterruptedError; the vectors computed so far are in the cache. */
  signal?: AbortSignal;
  /**
   * Run an int8 version of the backbone (static post-training quantization calibrated on these images):
   * faster on CPUs with integer kernels; its features, and so its features-store key, differ from the float model's.
   */
  int8?: Omit<Int8Options, 'threads' | 'logger'>;
}

export interface FeatureSet {
  /** n * dim values; rows of files that could not be read are zero and `ok` is false for them. */
  features: Float32Array;
  dim: number;
  ok: boolean[];
  /** The content hash (SHA-256 of the bytes) of each image; undefined where it could not be read. */
  hashes: Array<string | undefined>;
  failed: SkippedFile[];
  fromCache: number;
  computed: number;
  seconds: number;
  /** Seconds inside the backbone's forward passes (the rest is reading, hashing and decoding, overlapped). */
  modelSeconds: number;
}

export interface ExtractOptions {
  /**
   * Reads an image's bytes (default: the file at the path). Another source, such as an http(s) URL, plugs in
   * here; throw an `ImageDecodeError` to report the image as failed with its reason. Images read this way
   * are hashed from the bytes returned; the content-hash index is not used.
   */
  read?: (src: string) => Promise<Buffer>;
  /** This call's progress and stop signal (default: the extractor's). */
  onProgress?: (p: ExtractProgress) => void;
  signal?: AbortSignal;
}

export interface FeatureExtractor {
  readonly backbone: Backbone;
  readonly dim: number;
  readonly runtime: string;
  /** The features-store key of this backbone, preprocessing, input size, resize mode and kernel. */
  readonly key: string;
  /** The int8 model in use, when `int8` was asked for. */
  readonly int8?: Int8Model;
  extract(paths: string[], label?: string, opts?: ExtractOptions): Promise<FeatureSet>;
  close(): Promise<void>;
}

export async function createFeatureExtractor(backbone: Backbone, opts: FeatureExtractorOptions = {}): Promise<FeatureExtractor> {
  const log = opts.logger ?? silentLogger;
  const kernel = opts.kernel ?? 'linear';
  let runner: InferenceRunner;
  let int8: Int8Model | undefined;
  if (opts.int8) {
    if (!backbone.artifacts) throw new Error(`--int8 quantizes tlearn's float backbones; ${backbone.source} is a TFLite model, already quantized or run as it is`);
    const floatBytes = await cachedOnnx(backbone.artifacts, backbone.id);
    int8 = await int8Model(floatBytes, backbone.id, { inputSize: backbone.inputSize, preprocessing: backbone.preprocessing, resize: backbone.resize, kernel }, { ...opts.int8, threads: opts.threads, logger: log });
    const r = await onnxRunner(int8.bytes, { inputSize: backbone.inputSize, threads: opts.threads }).catch((e: any) => {
      throw new Error(`--int8 needs onnxruntime, which could not run the int8 model: ${String(e.message ?? e).split('\n')[0]}`);
    });
    runner = { ...r, backend: `${r.backend}, ${describeInt8(int8)}`, run: r.run, close: r.close };
  } else {
    runner = await backboneRunner(backbone, { threads: opts.threads, logger: log });
  }
  const dim = runner.outputDim;
  // the int8 model computes other vectors: its own key (float id + calibration + quantizer settings)
  const key = extractorKey({ backboneId: int8 ? `${backbone.id}-int8-${int8.id}` : backbone.id, preprocessing: backbone.preprocessing, inputSize: backbone.inputSize, resize: backbone.resize, kernel });
  const cache = opts.cache === false ? undefined : new FeatureCache(key, dim);
  return {
    backbone,
    dim,
    runtime: runner.backend,
    key,
    int8,
    async extract(paths, label = 'features', eo = {}) {
      const t0 = performance.now();
      const onProgress = eo.onProgress ?? opts.onProgress;
      const signal = eo.signal ?? opts.signal;
      let done = 0;
      let cached = 0;
      const report = () => {
        const seconds = (performance.now() - t0) / 1000;
        const rate = seconds > 0 ? (done - cached) / seconds : 0;
        onProgress!({ label, done, total: paths.length, cached, rate, etaSeconds: rate > 0 ? (paths.length - done) / rate : done >= paths.length ? 0 : null });
      };
      const progress: Progress = onProgress
        ? {
            tick: (n = 1) => {
              done += n;
              report();
            },
            done: () => {},
          }
        : log.progress(label, paths.length);
      if (onProgress) report();
      const index = cache && !eo.read ? await ContentHashIndex.open(path.join(featuresRoot(), 'content-hashes.json')) : undefined;
      const read = eo.read ?? ((f: string) => fs.readFile(f));
      const hashOf = new Map<string, string>();
      const lookup = cache ? (h: string) => cache.get(h).then((v) => (v && cached++, v)) : undefined;
      let r: Awaited<ReturnType<typeof streamImages>>;
      try {
        r = await streamImages(paths, runner, {
          hashFile: async (f) => {
            const h = index ? await index.hash(f) : await read(f).then((bytes) => ({ hash: sha256(bytes), bytes }));
            hashOf.set(f, h.hash);
            return h;
          },
          inputSize: backbone.inputSize,
          preprocessing: backbone.preprocessing,
          resize: backbone.resize,
          kernel,
          batchSize: opts.batchSize,
          progress,
          lookup,
          store: cache ? (h, row) => cache.put(h, row) : undefined,
          signal,
        });
      } catch (e) {
        if (e instanceof InterruptedError) {
          e.message = `stopped while extracting ${label}: ${e.message.replace(/^stopped after /, '')}${cache ? '; the features computed so far are in the cache, so a run over these images does not compute them again' : ''}`;
        }
        throw e;
      } finally {
        // the content hashes read so far make the next run warm too
        await index?.save();
      }
      progress.done();
      return { features: r.outputs, dim, ok: r.ok, hashes: paths.map((p) => hashOf.get(p)), failed: r.failed, fromCache: r.fromCache, computed: r.computed, seconds: (performance.now() - t0) / 1000, modelSeconds: r.modelSeconds };
    },
    close: () => runner.close(),
  };
}

/** One-shot: features for `paths` with `backbone`. */
export async function extractFeatures(paths: string[], backbone: Backbone, opts: FeatureExtractorOptions = {}): Promise<FeatureSet> {
  const fx = await createFeatureExtractor(backbone, opts);
  try {
    return await fx.extract(paths);
  } finally {
    await fx.close();
  }
}
