/**
 * Feature extraction: every image through the frozen backbone once, the vectors kept in the on-disk cache.
 * A second run over the same images with the same backbone reads the cache and does not run the backbone.
 */
import type { Backbone } from '../backbones/load.js';
import type { ResizeKernel } from '../data/decode.js';
import type { SkippedFile } from '../data/discover.js';
import { cachedOnnx, createRunner, onnxRunner, type InferenceRunner } from '../runtime/inference.js';
import { describeInt8, int8Model, type Int8Model, type Int8Options } from '../runtime/int8.js';
import { streamImages } from '../runtime/image-stream.js';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { sha256 } from '../util/hash.js';
import { extractorKey, FeatureCache, featuresRoot } from './cache.js';
import { ContentHashIndex } from '../data/hash-index.js';

export interface FeatureExtractorOptions {
  /** Use the on-disk cache (default true). */
  cache?: boolean;
  batchSize?: number;
  kernel?: ResizeKernel;
  threads?: number;
  logger?: Logger;
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
    const floatBytes = await cachedOnnx(backbone.artifacts, backbone.id);
    int8 = await int8Model(floatBytes, backbone.id, { inputSize: backbone.inputSize, preprocessing: backbone.preprocessing, resize: backbone.resize, kernel }, { ...opts.int8, threads: opts.threads, logger: log });
    const r = await onnxRunner(int8.bytes, { inputSize: backbone.inputSize, threads: opts.threads }).catch((e: any) => {
      throw new Error(`--int8 needs onnxruntime, which could not run the int8 model: ${String(e.message ?? e).split('\n')[0]}`);
    });
    runner = { ...r, backend: `${r.backend}, ${describeInt8(int8)}`, run: r.run, close: r.close };
  } else {
    runner = await createRunner(backbone.artifacts, { inputSize: backbone.inputSize, cacheKey: backbone.id, threads: opts.threads, logger: log });
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
      const progress = log.progress(label, paths.length);
      const index = cache && !eo.read ? await ContentHashIndex.open(path.join(featuresRoot(), 'content-hashes.json')) : undefined;
      const read = eo.read ?? ((f: string) => fs.readFile(f));
      const hashOf = new Map<string, string>();
      const r = await streamImages(paths, runner, {
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
        lookup: cache ? (h) => cache.get(h) : undefined,
        store: cache ? (h, row) => cache.put(h, row) : undefined,
      });
      progress.done();
      await index?.save();
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
