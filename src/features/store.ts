/**
 * The features store: one embedded LMDB environment ($TLEARN_HOME/features/features.lmdb) shared by every
 * tlearn process on the machine. LMDB gives ACID transactions across processes (a write lock in the lock
 * file, copy-on-write pages and an atomic meta-page switch), so a process killed in the middle of a write
 * leaves the store as it was before that transaction, and readers never see part of an entry.
 *
 * Layout, three databases in one file:
 *  - `vectors`: uint32 sequence number -> the vector's float32 bytes. Numbers come from a counter bumped inside
 *    each write transaction and are appended in order, so pages fill completely (64 KiB pages: 12 vectors of
 *    1280 floats per page, about 5.5 KB per vector on disk).
 *  - `index`: "<extractor key>/<content hash>" -> sequence number and dimension (8 bytes).
 *  - `meta`: the counter, and the number of vectors per extractor key (for `tlearn cache info`).
 */
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';

export const STORE_FILE = 'features.lmdb';
const COUNTER = 'next';
const countKey = (extractor: string) => `count/${extractor}`;

function u32Pair(a: number, b: number): Buffer {
  const buf = Buffer.allocUnsafe(8);
  buf.writeUInt32LE(a, 0);
  buf.writeUInt32LE(b, 4);
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
  private readonly root: RootDatabase;
  private readonly vectors: Database<Buffer, number>;
  private readonly index: Database<Buffer, string>;
  private readonly meta: Database<Buffer, string>;
  private pending: StoreEntry[] = [];
  private flushing: Promise<void> | undefined;

  private constructor(readonly file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.root = open({ path: file, pageSize: 65536, maxDbs: 4 });
    this.vectors = this.root.openDB<Buffer, number>({ name: 'vectors', keyEncoding: 'uint32', encoding: 'binary' });
    this.index = this.root.openDB<Buffer, string>({ name: 'index', encoding: 'binary' });
    this.meta = this.root.openDB<Buffer, string>({ name: 'meta', encoding: 'binary' });
  }

  private static opened = new Map<string, FeatureStore>();

  /** The store under `dir` (opened once per process). */
  static at(dir: string): FeatureStore {
    const file = path.resolve(dir, STORE_FILE);
    let s = FeatureStore.opened.get(file);
    if (!s) {
      s = new FeatureStore(file);
      FeatureStore.opened.set(file, s);
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

  has(extractor: string, hash: string): boolean {
    return this.index.doesExist(`${extractor}/${hash}`);
  }

  /**
   * Queues entries; everything queued in the same event-loop turn is written in one transaction. Resolves once
   * that transaction is committed. An entry whose key is already stored is left as it is.
   */
  put(entries: StoreEntry[]): Promise<void> {
    this.pending.push(...entries);
    this.flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.flush());
    return this.flushing;
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.flushing = undefined;
    await this.root.transaction(() => {
      let next = this.meta.getBinary(COUNTER)?.readUInt32LE(0) ?? 0;
      const added = new Map<string, number>();
      for (const e of batch) {
        const key = `${e.extractor}/${e.hash}`;
        if (this.index.getBinary(key) !== undefined) continue;
        const bytes = Buffer.from(e.vector.buffer, e.vector.byteOffset, e.vector.byteLength);
        // MDB_APPEND (lmdb's typings only list the version argument)
        (this.vectors.put as (k: number, v: Buffer, o: { append: boolean }) => Promise<boolean>)(next, bytes, { append: true });
        this.index.put(key, u32Pair(next, e.vector.length));
        added.set(e.extractor, (added.get(e.extractor) ?? 0) + 1);
        next++;
      }
      const counter = Buffer.allocUnsafe(4);
      counter.writeUInt32LE(next, 0);
      this.meta.put(COUNTER, counter);
      for (const [extractor, n] of added) {
        const c = Buffer.allocUnsafe(4);
        c.writeUInt32LE((this.meta.getBinary(countKey(extractor))?.readUInt32LE(0) ?? 0) + n, 0);
        this.meta.put(countKey(extractor), c);
      }
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
    for (const f of [this.file, `${this.file}-lock`]) {
      try {
        bytes += statSync(f).blocks * 512;
      } catch {
        /* absent */
      }
    }
    return { extractors, entries, bytes };
  }

  async close(): Promise<void> {
    if (this.flushing) await this.flushing;
    await this.root.close();
  }
}
