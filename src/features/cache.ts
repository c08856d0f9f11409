/**
 * The features cache: a feature vector per (image content, feature extractor) pair, kept in the embedded
 * LMDB store under $TLEARN_HOME/features (src/features/store.ts). Writes are transactional, so a killed
 * process never leaves a half-written entry that a later run could read, and several processes can share it.
 * Caches in the former layout (one file per vector in per-extractor folders) are not read; `tlearn cache
 * clear` removes them and the vectors are recomputed.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { sha256 } from '../util/hash.js';
import { tlearnHome } from '../util/home.js';
import { FeatureStore, STORE_FILE } from './store.js';

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
  const parts: unknown[] = [p.backboneId, p.preprocessing, p.inputSize, p.resize, p.kernel];
  // 'fast' names the decoder whose pixels these features come from (keys before it had none: another decoder)
  parts.push('fast');
  return sha256(JSON.stringify(parts)).slice(0, 20);
}

export class FeatureCache {
  readonly root: string;

  constructor(
    readonly key: string,
    readonly dim: number,
    root = featuresRoot(),
  ) {
    this.root = root;
  }

  private get store(): FeatureStore {
    return FeatureStore.at(this.root);
  }

  /** The cached vector, or undefined when absent or not exactly `dim` floats. */
  async get(contentHash: string): Promise<Float32Array | undefined> {
    return this.store.get(this.key, contentHash, this.dim);
  }

  async getMany(contentHashes: string[]): Promise<Array<Float32Array | undefined>> {
    const s = this.store;
    return contentHashes.map((h) => s.get(this.key, h, this.dim));
  }

  /** Stores a vector (puts made in the same event-loop turn share one transaction); resolves when committed. */
  async put(contentHash: string, vector: Float32Array): Promise<void> {
    await this.putMany([[contentHash, vector]]);
  }

  async putMany(entries: Array<[contentHash: string, vector: Float32Array]>): Promise<void> {
    for (const [, v] of entries) if (v.length !== this.dim) throw new Error(`feature vector has ${v.length} values, expected ${this.dim}`);
    await this.store.put(entries.map(([hash, vector]) => ({ extractor: this.key, hash, vector })));
  }
}

export interface CacheUsage {
  extractors: number;
  entries: number;
  bytes: number;
  /** Vector files of the former one-file-per-vector layout (not read any more; `cache clear` removes them). */
  legacyFiles: number;
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
  let entries = 0;
  let extractors = 0;
  let bytes = 0;
  try {
    await fs.access(path.join(root, STORE_FILE));
    const u = FeatureStore.at(root).usage();
    entries = u.entries;
    extractors = Object.keys(u.extractors).length;
    bytes = u.bytes;
  } catch {
    /* no store yet */
  }
  let legacyFiles = 0;
  const dirs = await fs.readdir(root, { withFileTypes: true }).catch(() => []);
  for (const d of dirs) {
    if (!d.isDirectory()) continue;
    await walk(path.join(root, d.name), (f, size) => {
      if (f.endsWith('.f32')) legacyFiles++;
      bytes += size;
    });
  }
  return { extractors, entries, bytes, legacyFiles };
}

/** Deletes cached features: the store and any former-layout files (and whatever else lives under the root). */
export async function clearFeaturesCache(root = featuresRoot()): Promise<CacheUsage> {
  const usage = await featuresCacheUsage(root);
  await FeatureStore.closeAll();
  await fs.rm(root, { recursive: true, force: true });
  return usage;
}
