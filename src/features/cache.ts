/**
 * The features cache: one file per (image content, feature extractor) pair under
 * $TLEARN_HOME/features/<extractor key>/. Entries are written to a temporary file and renamed into place,
 * so a killed process never leaves a half-written entry that a later run could read.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/fs.js';
import { sha256 } from '../util/hash.js';
import { tlearnHome } from '../util/home.js';

export interface ExtractorKeyParts {
  backboneId: string;
  preprocessing: string;
  inputSize: [number, number];
  resize: string;
  kernel: string;
}

export function featuresRoot(): string {
  return path.join(tlearnHome(), 'features');
}

/** A stable key for everything that changes a feature vector other than the image itself. */
export function extractorKey(p: ExtractorKeyParts): string {
  return sha256(JSON.stringify([p.backboneId, p.preprocessing, p.inputSize, p.resize, p.kernel])).slice(0, 20);
}

export class FeatureCache {
  readonly dir: string;

  constructor(
    key: string,
    readonly dim: number,
    root = featuresRoot(),
  ) {
    this.dir = path.join(root, key);
  }

  private file(contentHash: string): string {
    return path.join(this.dir, contentHash.slice(0, 2), `${contentHash}.f32`);
  }

  /** The cached vector, or undefined when absent or not exactly `dim` floats. */
  async get(contentHash: string): Promise<Float32Array | undefined> {
    let buf: Buffer;
    try {
      buf = await fs.readFile(this.file(contentHash));
    } catch {
      return undefined;
    }
    if (buf.length !== this.dim * 4) return undefined;
    const out = new Float32Array(this.dim);
    new Uint8Array(out.buffer).set(buf);
    return out;
  }

  async put(contentHash: string, vector: Float32Array): Promise<void> {
    if (vector.length !== this.dim) throw new Error(`feature vector has ${vector.length} values, expected ${this.dim}`);
    await writeFileAtomic(this.file(contentHash), new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength));
  }
}

export interface CacheUsage {
  extractors: number;
  entries: number;
  bytes: number;
}

async function walk(dir: string, fn: (file: string, size: number) => void): Promise<void> {
  let list;
  try {
    list = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of list) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) await walk(full, fn);
    else fn(full, (await fs.stat(full)).size);
  }
}

export async function featuresCacheUsage(root = featuresRoot()): Promise<CacheUsage> {
  let extractors = 0;
  try {
    extractors = (await fs.readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory()).length;
  } catch {
    /* empty */
  }
  let entries = 0;
  let bytes = 0;
  await walk(root, (f, size) => {
    if (f.endsWith('.f32')) entries++;
    bytes += size;
  });
  return { extractors, entries, bytes };
}

/** Deletes cached features (and the cached ONNX conversions, which are derived data too). */
export async function clearFeaturesCache(root = featuresRoot()): Promise<CacheUsage> {
  const usage = await featuresCacheUsage(root);
  await fs.rm(root, { recursive: true, force: true });
  return usage;
}
