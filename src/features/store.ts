/**
 * The features store: embedded LMDB databases under $TLEARN_HOME/features, shared by every tlearn process on the
 * machine. LMDB gives ACID transactions across processes (a write lock in the lock file, copy-on-write pages and
 * an atomic meta-page switch), so a process killed in the middle of a write leaves each database as it was before
 * that transaction, and readers never see part of an entry.
 *
 * Two environments, each laid out for its writes:
 *  - `vectors.lmdb` (64 KiB pages): uint32 sequence number -> the vector's float32 bytes. Numbers come from a
 *    counter bumped inside each write transaction and are appended in order, so pages fill completely (12 vectors
 *    of 1280 floats per page, about 5.5 KB per vector on disk).
 *  - `features.lmdb` (the system's page size): `index`, "<extractor key>/<content hash>" -> sequence number and
 *    dimension (8 bytes), which takes random inserts; and `meta`, the number of vectors per extractor key (for
 *    `tlearn cache info`).
 * A batch is written as one vectors transaction, then one index transaction: an index entry exists only once its
 * vector is committed, so every entry is whole or absent. A crash between the two leaves unindexed vectors (never
 * read; `tlearn cache clear` frees them), as does a vector another process indexed first.
 */
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';

export const STORE_FILE = 'features.lmdb';
export const VECTORS_FILE = 'vectors.lmdb';
const COUNTER = 'next';
const countKey = (extractor: string) => `count/${extractor}`;

function u32s(...values: number[]): Buffer {
  const buf = Buffer.allocUnsafe(4 * values.length);
  values.forEach((v, i) => buf.writeUInt32LE(v, 4 * i));
  return buf;
}

export interface StoreEntry {
  extractor: string;
  hash: string;
  vector: Float32Array;
}

export interface StoreUsage {
  /** Vectors per extractor key. */
  extractors: Record<string, number>;
  entries: number;
  /** Bytes the store's files take on disk. */
  bytes: number;
}

export class FeatureStore {
  private readonly indexEnv: RootDatabase;
  private readonly vectorEnv: RootDatabase;
  private readonly vectors: Database<Buffer, number>;
  private readonly index: Database<Buffer, string>;
  private readonly meta: Database<Buffer, string>;
  private readonly counter: Database<Buffer, string>;
  private pending: StoreEntry[] = [];
  private flushing: Promise<void> | undefined;

  private constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.indexEnv = open({ path: path.join(dir, STORE_FILE), maxDbs: 2 });
    this.index = this.indexEnv.openDB<Buffer, string>({ name: 'index', encoding: 'binary' });
    this.meta = this.indexEnv.openDB<Buffer, string>({ name: 'meta', encoding: 'binary' });
    this.vectorEnv = open({ path: path.join(dir, VECTORS_FILE), pageSize: 65536, maxDbs: 2 });
    this.vectors = this.vectorEnv.openDB<Buffer, number>({ name: 'vectors', keyEncoding: 'uint32', encoding: 'binary' });
    this.counter = this.vectorEnv.openDB<Buffer, string>({ name: 'counter', encoding: 'binary' });
  }

  private static opened = new Map<string, FeatureStore>();

  /** The store in `dir` (opened once per process). */
  static at(dir: string): FeatureStore {
    const key = path.resolve(dir);
    let s = FeatureStore.opened.get(key);
    if (!s) {
      s = new FeatureStore(key);
      FeatureStore.opened.set(key, s);
    }
    return s;
  }

  /** Closes every store this process opened (tests, and before deleting the files). */
  static async closeAll(): Promise<void> {
    const all = [...FeatureStore.opened.values()];
    FeatureStore.opened.clear();
    for (const s of all) await s.close();
  }

  /** The vector, or undefined when absent or stored with another dimension. */
  get(extractor: string, hash: string, dim: number): Float32Array | undefined {
    const ref = this.index.getBinaryFast(`${extractor}/${hash}`);
    if (!ref || ref.length !== 8 || ref.readUInt32LE(4) !== dim) return undefined;
    const bytes = this.vectors.getBinaryFast(ref.readUInt32LE(0));
    if (!bytes || bytes.length !== dim * 4) return undefined;
    const out = new Float32Array(dim);
    // getBinaryFast's Buffer is a view of a shared buffer: copy exactly `length` bytes out of it
    new Uint8Array(out.buffer).set(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
    return out;
  }

  /**
   * Queues entries; everything queued in the same event-loop turn is written together. Resolves once written.
   * An entry whose key is already stored is left as it is.
   */
  put(entries: StoreEntry[]): Promise<void> {
    this.pending.push(...entries);
    this.flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.flush());
    return this.flushing;
  }

  private async flush(): Promise<void> {
    const seen = new Set<string>();
    const batch = this.pending.filter((e) => {
      const key = `${e.extractor}/${e.hash}`;
      if (seen.has(key) || this.index.getBinaryFast(key) !== undefined) return false;
      seen.add(key);
      return true;
    });
    this.pending = [];
    this.flushing = undefined;
    if (!batch.length) return;
    const first = await this.vectorEnv.transaction(() => {
      const start = this.counter.getBinary(COUNTER)?.readUInt32LE(0) ?? 0;
      batch.forEach((e, k) => {
        // MDB_APPEND (lmdb's typings only list the version argument)
        (this.vectors.put as (k: number, v: Buffer, o: { append: boolean }) => Promise<boolean>)(start + k, Buffer.from(e.vector.buffer, e.vector.byteOffset, e.vector.byteLength), { append: true });
      });
      this.counter.put(COUNTER, u32s(start + batch.length));
      return start;
    });
    await this.indexEnv.transaction(() => {
      const added = new Map<string, number>();
      batch.forEach((e, k) => {
        const key = `${e.extractor}/${e.hash}`;
        if (this.index.getBinary(key) !== undefined) return; // another process stored it meanwhile
        this.index.put(key, u32s(first + k, e.vector.length));
        added.set(e.extractor, (added.get(e.extractor) ?? 0) + 1);
      });
      for (const [extractor, n] of added) this.meta.put(countKey(extractor), u32s((this.meta.getBinary(countKey(extractor))?.readUInt32LE(0) ?? 0) + n));
    });
  }

  usage(): StoreUsage {
    const extractors: Record<string, number> = {};
    let entries = 0;
    for (const { key, value } of this.meta.getRange({ start: 'count/', end: 'count0' })) {
      const n = (value as Buffer).readUInt32LE(0);
      extractors[String(key).slice('count/'.length)] = n;
      entries += n;
    }
    let bytes = 0;
    for (const f of [STORE_FILE, `${STORE_FILE}-lock`, VECTORS_FILE, `${VECTORS_FILE}-lock`]) {
      try {
        bytes += statSync(path.join(this.dir, f)).blocks * 512;
      } catch {
        /* absent */
      }
    }
    return { extractors, entries, bytes };
  }

  async close(): Promise<void> {
    if (this.flushing) await this.flushing;
    await this.indexEnv.close();
    await this.vectorEnv.close();
  }
}
