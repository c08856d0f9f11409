/**
 * The features store: write then read N synthetic 1280-d vectors (1,000,000 by default) in the LMDB store, beside
 * the former one-file-per-vector layout at a tenth of that (extrapolated, and said so), with bytes on disk and
 * how long `tlearn cache info` takes.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FeatureCache, featuresCacheUsage } from '../src/features/cache.js';
import { FeatureStore } from '../src/features/store.js';
import { writeFileAtomic } from '../src/util/fs.js';
import { Rng } from '../src/util/rng.js';
import { log, results, rows } from './common.js';

const DIM = 1280;
const hashOf = (i: number) => createHash('sha256').update(`bench-${i}`).digest('hex');
const vectorOf = (i: number) => new Float32Array(DIM).fill(i / 7);

/** The layout tlearn used before the store, for comparison: one file per vector, written atomically. */
const oldLayout = {
  file: (root: string, h: string) => path.join(root, 'extractor', h.slice(0, 2), `${h}.f32`),
  put: (root: string, h: string, v: Float32Array) => writeFileAtomic(oldLayout.file(root, h), new Uint8Array(v.buffer)),
  get: async (root: string, h: string) => new Float32Array((await fs.readFile(oldLayout.file(root, h))).buffer.slice(0)),
  /** What `cache info` did: walk every file. */
  async usage(dir: string): Promise<{ entries: number; bytes: number }> {
    let entries = 0;
    let bytes = 0;
    for (const e of await fs.readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) {
        const u = await oldLayout.usage(full);
        entries += u.entries;
        bytes += u.bytes;
      } else {
        entries++;
        bytes += (await fs.stat(full)).blocks * 512;
      }
    }
    return { entries, bytes };
  },
};

async function freeBytes(dir: string): Promise<number> {
  const s = await fs.statfs(dir);
  return s.bavail * s.bsize;
}

export async function benchStore(requested: number): Promise<void> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'tlearn-bench-store-'));
  const free = await freeBytes(root);
  // about 5.8 KB per vector in the store; keep half the free space untouched
  const n = Math.min(requested, Math.floor(free / 2 / 6000 / 1000) * 1000);
  if (n < requested) log(`store: ${(free / 1e9).toFixed(1)} GB free in ${os.tmpdir()}; measuring ${n} vectors instead of ${requested}`);
  const cache = new FeatureCache('bench', DIM, root);
  const B = 1000;
  let t = performance.now();
  for (let s = 0; s < n; s += B) {
    await cache.putMany(Array.from({ length: Math.min(B, n - s) }, (_, k) => [hashOf(s + k), vectorOf(s + k)] as [string, Float32Array]));
    if ((s / B) % 100 === 99) log(`store: ${s + B} vectors written`);
  }
  const write = n / ((performance.now() - t) / 1000);
  const order = new Rng(5).shuffle([...Array(n).keys()]);
  t = performance.now();
  let ok = 0;
  for (let s = 0; s < n; s += B) {
    const got = await cache.getMany(order.slice(s, s + B).map(hashOf));
    got.forEach((v, k) => (ok += v && v[0] === Math.fround(order[s + k]! / 7) ? 1 : 0));
  }
  const read = n / ((performance.now() - t) / 1000);
  if (ok !== n) throw new Error(`store bench: ${n - ok} of ${n} vectors did not read back`);
  await FeatureStore.closeAll();
  t = performance.now();
  const usage = await featuresCacheUsage(root);
  const infoMs = performance.now() - t;
  log(`store: ${n} vectors: write ${write.toFixed(0)}/s, read ${read.toFixed(0)}/s, ${(usage.bytes / 1e9).toFixed(2)} GB, cache info ${infoMs.toFixed(0)} ms`);
  await fs.rm(root, { recursive: true, force: true });

  const m = Math.max(1000, Math.round(n / 10));
  const old = mkdtempSync(path.join(os.tmpdir(), 'tlearn-bench-oldcache-'));
  t = performance.now();
  for (let s = 0; s < m; s += 100) await Promise.all(Array.from({ length: Math.min(100, m - s) }, (_, k) => oldLayout.put(old, hashOf(s + k), vectorOf(s + k))));
  const oldWrite = m / ((performance.now() - t) / 1000);
  const oldOrder = new Rng(5).shuffle([...Array(m).keys()]);
  t = performance.now();
  for (let s = 0; s < m; s += 100) await Promise.all(oldOrder.slice(s, s + 100).map((i) => oldLayout.get(old, hashOf(i))));
  const oldRead = m / ((performance.now() - t) / 1000);
  t = performance.now();
  const oldUsage = await oldLayout.usage(old);
  const oldInfoMs = performance.now() - t;
  await fs.rm(old, { recursive: true, force: true });
  const x = n / m;
  log(`old layout: ${m} vectors: write ${oldWrite.toFixed(0)}/s, read ${oldRead.toFixed(0)}/s, ${(oldUsage.bytes / 1e9).toFixed(2)} GB, cache info ${oldInfoMs.toFixed(0)} ms`);
  rows.push(
    { what: `features store (LMDB): write then read ${n.toLocaleString('en-US')} synthetic 1280-d vectors`, value: `write ${write.toFixed(0)}/s, read ${read.toFixed(0)}/s`, note: `batches of ${B}, reads in random order; ${(usage.bytes / 1e9).toFixed(2)} GB on disk (${(usage.bytes / n).toFixed(0)} bytes per 5,120-byte vector) in 2 files; \`cache info\` ${infoMs.toFixed(0)} ms` },
    { what: `former layout (one file per vector) at ${m.toLocaleString('en-US')} vectors`, value: `write ${oldWrite.toFixed(0)}/s, read ${oldRead.toFixed(0)}/s`, note: `${(oldUsage.bytes / 1e9).toFixed(3)} GB on disk (${(oldUsage.bytes / m).toFixed(0)} bytes per vector) in ${m.toLocaleString('en-US')} files; \`cache info\` ${oldInfoMs.toFixed(0)} ms; **extrapolated** to ${n.toLocaleString('en-US')}: ${((oldUsage.bytes * x) / 1e9).toFixed(1)} GB, ${n.toLocaleString('en-US')} files, \`cache info\` ~${((oldInfoMs * x) / 1000).toFixed(0)} s` },
  );
  Object.assign(results, {
    storeVectors: n,
    storeWriteVectorsPerSecond: Math.round(write),
    storeReadVectorsPerSecond: Math.round(read),
    storeBytesOnDisk: usage.bytes,
    storeCacheInfoMs: Math.round(infoMs),
    oldLayoutVectors: m,
    oldLayoutWriteVectorsPerSecond: Math.round(oldWrite),
    oldLayoutReadVectorsPerSecond: Math.round(oldRead),
    oldLayoutBytesOnDisk: oldUsage.bytes,
    oldLayoutCacheInfoMs: Math.round(oldInfoMs),
  });
}
