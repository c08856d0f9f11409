import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FeatureCache, featuresCacheUsage } from '../src/features/cache.js';
import { FeatureStore } from '../src/features/store.js';
import { sha256 } from '../src/util/hash.js';
import { ROOT, tmpDir } from './helpers.js';

const WRITER = path.join(ROOT, 'test', 'store-writer.ts');

/** Starts a writer process; `committed` follows its progress. */
function writer(root: string, start: number, count: number, batch: number, dim = 64) {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, root, String(start), String(count), String(batch), String(dim)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const state = { committed: 0, stderr: '' };
  child.stdout.on('data', (d: Buffer) => {
    const m = /committed (\d+)\s*$/.exec(d.toString());
    if (m) state.committed = Number(m[1]);
  });
  child.stderr.on('data', (d: Buffer) => (state.stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, state, exited };
}

/** Every entry in [0, n): whole (all values i), absent, or (a defect) something else. */
async function census(root: string, n: number, dim = 64): Promise<{ whole: number; absent: number; broken: number }> {
  const cache = new FeatureCache('store-test', dim, root);
  const r = { whole: 0, absent: 0, broken: 0 };
  const got = await cache.getMany(Array.from({ length: n }, (_, i) => sha256(`v${i}`)));
  got.forEach((v, i) => {
    if (!v) r.absent++;
    else if (v.length === dim && v.every((x) => x === i)) r.whole++;
    else r.broken++;
  });
  return r;
}

afterEach(() => FeatureStore.closeAll());

describe('features store (LMDB): several processes and killed writers', () => {
  it('two processes writing at once, with overlapping keys, leave every entry whole and counted once', async () => {
    const root = tmpDir();
    const a = writer(root, 0, 3000, 100);
    const b = writer(root, 1500, 3000, 100);
    const [ea, eb] = await Promise.all([a.exited, b.exited]);
    expect(ea, a.state.stderr).toEqual({ code: 0, signal: null });
    expect(eb, b.state.stderr).toEqual({ code: 0, signal: null });
    expect(await census(root, 4500)).toEqual({ whole: 4500, absent: 0, broken: 0 });
    const u = await featuresCacheUsage(root);
    expect([u.entries, u.extractors]).toEqual([4500, 1]);
  });

  it('a writer killed with SIGKILL in the middle of writing leaves a store that opens, with every entry absent or whole', async () => {
    const root = tmpDir();
    // large transactions (2000 vectors of 1280 floats, 10 MB each), so the kill lands inside one
    const w = writer(root, 0, 1_000_000, 2000, 1280);
    const t0 = Date.now();
    while (w.state.committed < 4000 && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 5));
    expect(w.state.committed, w.state.stderr).toBeGreaterThanOrEqual(4000);
    await new Promise((r) => setTimeout(r, 3 + Math.floor(Math.random() * 20)));
    w.child.kill('SIGKILL');
    expect((await w.exited).signal).toBe('SIGKILL');
    const committed = w.state.committed;
    const seen = await census(root, committed + 20_000, 1280);
    expect(seen.broken).toBe(0);
    expect(seen.whole).toBeGreaterThanOrEqual(committed);
    expect(seen.whole % 2000).toBe(0); // whole transactions only
    // the store still takes writes (the dead writer's lock is released) and counts exactly what it holds
    const next = writer(root, seen.whole, 500, 250, 1280);
    expect((await next.exited).code, next.state.stderr).toBe(0);
    expect((await census(root, seen.whole + 500, 1280)).whole).toBe(seen.whole + 500);
    expect((await featuresCacheUsage(root)).entries).toBe(seen.whole + 500);
  });
});
