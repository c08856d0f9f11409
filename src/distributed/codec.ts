/**
 * What travels over the queue. A job names the images (absolute paths on a shared filesystem, or http(s)
 * URLs) and the extractor they must go through; its result holds, per image, the content hash and the
 * feature vector as base64 of its float32 little-endian bytes (1280 floats: 6,828 characters, a third more
 * than the raw bytes and a quarter of what JSON numbers take), or the reason the image failed.
 */
import os from 'node:os';
import type { PreprocessMode } from '../backbones/preprocess.js';
import { PREPROCESS_MODES } from '../backbones/preprocess.js';
import type { ResizeKernel, ResizeMode } from '../image/decode.js';
import { RESIZE_MODES } from '../image/decode.js';

export const CODEC_VERSION = 1;

/** How to build the feature extractor: what `tlearn extract` was given, resolved so that any machine can load it. */
export interface ExtractorSpec {
  /** A zoo name, or the absolute path of a TF.js layers model folder (on the shared filesystem). */
  backbone: string;
  preprocessing?: PreprocessMode;
  cutAt?: string;
  resize?: ResizeMode;
  kernel: ResizeKernel;
}

export interface ExtractJob {
  v: number;
  /** The coordinator run that wants the results; workers skip jobs of runs that are gone. */
  run: string;
  /** The features-store key the vectors must be computed for (see `extractorKey`). */
  key: string;
  dim: number;
  spec: ExtractorSpec;
  /** Absolute paths or http(s) URLs. */
  items: string[];
}

export type ItemResult = { hash: string; size: number; vector: string } | { error: string };

export interface ExtractJobResult {
  v: number;
  key: string;
  dim: number;
  /** The worker that computed it (`--name`, default host:pid). */
  worker: string;
  /** One entry per job item, in order. Empty when `skipped`. */
  items: ItemResult[];
  seconds: number;
  /** Set when the worker did not process the job, and why (its run had ended). */
  skipped?: string;
}

export class CodecError extends Error {}

const LE = os.endianness() === 'LE';

/** float32 values → base64 of their little-endian bytes. */
export function encodeVector(v: Float32Array): string {
  if (LE) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  const buf = Buffer.allocUnsafe(v.length * 4);
  for (let i = 0; i < v.length; i++) buf.writeFloatLE(v[i]!, i * 4);
  return buf.toString('base64');
}

/** base64 of float32 little-endian bytes → `dim` values; throws on any other length. */
export function decodeVector(s: string, dim: number): Float32Array {
  const buf = Buffer.from(s, 'base64');
  if (buf.length !== dim * 4) throw new CodecError(`a vector has ${buf.length} bytes, expected ${dim * 4} (${dim} float32 values)`);
  const out = new Float32Array(dim);
  if (LE) new Uint8Array(out.buffer).set(buf);
  else for (let i = 0; i < dim; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}

const isObj = (x: unknown): x is Record<string, any> => typeof x === 'object' && x !== null && !Array.isArray(x);
const HASH = /^[0-9a-f]{64}$/;
const KERNELS: ResizeKernel[] = ['nearest', 'linear', 'cubic', 'lanczos3'];

function checkSpec(s: unknown): ExtractorSpec {
  if (!isObj(s) || typeof s.backbone !== 'string' || !s.backbone) throw new CodecError('the job has no backbone');
  if (s.preprocessing !== undefined && !PREPROCESS_MODES.includes(s.preprocessing)) throw new CodecError(`unknown preprocessing '${s.preprocessing}'`);
  if (s.resize !== undefined && !RESIZE_MODES.includes(s.resize)) throw new CodecError(`unknown resize mode '${s.resize}'`);
  if (!KERNELS.includes(s.kernel)) throw new CodecError(`unknown resize kernel '${s.kernel}'`);
  if (s.cutAt !== undefined && typeof s.cutAt !== 'string') throw new CodecError('cutAt must be a layer name');
  return { backbone: s.backbone, preprocessing: s.preprocessing, cutAt: s.cutAt, resize: s.resize, kernel: s.kernel };
}

/** Checks a job's data as a worker receives it; a malformed job is an error naming what is wrong. */
export function parseJob(data: unknown): ExtractJob {
  if (!isObj(data)) throw new CodecError('the job data is not an object');
  if (data.v !== CODEC_VERSION) throw new CodecError(`the job is format version ${data.v}; this tlearn reads version ${CODEC_VERSION} (run the same tlearn version on the coordinator and the workers)`);
  if (typeof data.run !== 'string' || typeof data.key !== 'string') throw new CodecError('the job has no run or extractor key');
  if (!Number.isInteger(data.dim) || data.dim < 1) throw new CodecError('the job has no feature dimension');
  if (!Array.isArray(data.items) || !data.items.every((x: unknown) => typeof x === 'string' && x.length > 0)) throw new CodecError('the job items must be paths or URLs');
  return { v: data.v, run: data.run, key: data.key, dim: data.dim, spec: checkSpec(data.spec), items: data.items };
}

/**
 * Checks a result as the coordinator receives it, against the job it answers: same extractor key and
 * dimension, one entry per item, well-formed hashes and vectors. Anything else is an error, so that no
 * wrong vector reaches the store.
 */
export function parseResult(value: unknown, job: Pick<ExtractJob, 'key' | 'dim' | 'items'>): ExtractJobResult & { vectors: Array<Float32Array | undefined> } {
  if (!isObj(value)) throw new CodecError('the job result is not an object');
  if (value.v !== CODEC_VERSION) throw new CodecError(`the result is format version ${value.v}, expected ${CODEC_VERSION}`);
  const worker = typeof value.worker === 'string' ? value.worker : 'unknown worker';
  if (value.key !== job.key || value.dim !== job.dim) {
    throw new CodecError(`worker ${worker} computed vectors for extractor ${value.key} (${value.dim}-d), but this extraction is ${job.key} (${job.dim}-d)`);
  }
  if (typeof value.skipped === 'string') return { ...(value as ExtractJobResult), worker, items: [], vectors: [] };
  if (!Array.isArray(value.items) || value.items.length !== job.items.length) {
    throw new CodecError(`worker ${worker} returned ${Array.isArray(value.items) ? value.items.length : 'no'} results for ${job.items.length} images`);
  }
  const vectors = value.items.map((it: unknown, i: number) => {
    if (isObj(it) && typeof it.error === 'string') return undefined;
    if (!isObj(it) || typeof it.hash !== 'string' || !HASH.test(it.hash) || typeof it.vector !== 'string' || !Number.isInteger(it.size)) {
      throw new CodecError(`worker ${worker} returned a malformed result for ${job.items[i]}`);
    }
    return decodeVector(it.vector, job.dim);
  });
  return { v: value.v, key: value.key, dim: value.dim, worker, items: value.items, seconds: Number(value.seconds) || 0, vectors };
}
