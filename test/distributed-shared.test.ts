/**
 * Issue 14's acceptance runs on real data: ants/bees (398 photos up to 2592x1944) with MobileNetV2-0.35 from
 * ../shared, a local redis-server and two `tlearn worker` processes. Skipped with a message when ../shared or
 * redis-server is absent.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBackbone } from '../src/backbones/load.js';
import { extractViaQueue, type VectorStore } from '../src/distributed/coordinator.js';
import { loadImageFolder } from '../src/data/discover.js';
import { FeatureCache } from '../src/features/cache.js';
import { extractFeatures } from '../src/features/extract.js';
import { sha256 } from '../src/util/hash.js';
import { HYMENOPTERA, MOBILENET, hasShared, runCli, tmpDir } from './helpers.js';
import { hasRedis, spawnWorker, startRedis, type RedisServer, type WorkerProc } from './redis.js';

const ready = hasShared(HYMENOPTERA, 'distributed ants/bees test') && hasShared(MOBILENET, 'distributed ants/bees test') && hasRedis('distributed ants/bees test');

describe.runIf(ready)('ants/bees over BullMQ with two tlearn workers (MobileNetV2-0.35)', () => {
  let redis: RedisServer;
  let images: string[];
  let hashes: string[];
  let reference: Float32Array;
  let dim: number;
  const workers: WorkerProc[] = [];
  const worker = (name: string) => {
    const w = spawnWorker(redis.url, name, [], { TLEARN_HOME: tmpDir('tlearn-worker-home-') });
    workers.push(w);
    return w;
  };

  beforeAll(async () => {
    redis = await startRedis();
    images = (await loadImageFolder(HYMENOPTERA)).images.map((i) => i.path);
    hashes = await Promise.all(images.map(async (p) => sha256(await fs.readFile(p))));
    const ref = await extractFeatures(images, await loadBackbone(MOBILENET), { cache: false });
    expect(ref.failed).toEqual([]);
    reference = ref.features;
    dim = ref.dim;
  });

  afterAll(async () => {
    for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
    await redis?.stop();
  });

  /** max |stored - single-process| over every image; fails if any vector is missing. */
  async function maxDifference(store: FeatureCache): Promise<number> {
    let max = 0;
    for (let i = 0; i < images.length; i++) {
      const v = await store.get(hashes[i]!);
      expect(v, images[i]).toBeDefined();
      for (let k = 0; k < dim; k++) max = Math.max(max, Math.abs(v![k]! - reference[i * dim + k]!));
    }
    return max;
  }

  it('tlearn extract --queue with two workers: every vector equals single-process extraction, each image stored once', async () => {
    const [a, b] = [worker('w1'), worker('w2')];
    await Promise.all([a, b].map((w) => w.waitFor(/waiting for extractions/)));
    const home = tmpDir('tlearn-coordinator-home-');
    const r = await runCli(['extract', HYMENOPTERA, '--backbone', MOBILENET, '--queue', redis.url, '--json'], { TLEARN_HOME: home });
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    const distinct = new Set(hashes).size;
    expect(j).toMatchObject({ images: 398, computed: 398, fromStore: 0, stored: distinct, duplicates: 398 - distinct, failed: [], jobFailures: [] });
    expect(Object.keys(j.workers).sort()).toEqual(['w1', 'w2']);
    const diff = await maxDifference(new FeatureCache(j.key, j.dim, path.join(home, 'features')));
    console.log(`ants/bees over 2 workers: ${JSON.stringify(j.workers)}, ${j.seconds.toFixed(1)} s, max |difference| from single-process ${diff}`);
    expect(diff).toBeLessThanOrEqual(1e-6);
    for (const w of [a, b]) expect(await w.stop()).toEqual({ code: 0, signal: null });
  });

  it('one worker SIGKILLed mid-job: the run completes with every vector, none written twice, none missing', async () => {
    const [a, b] = [worker('killed'), worker('survivor')];
    await Promise.all([a, b].map((w) => w.waitFor(/waiting for extractions/)));
    const dir = tmpDir('tlearn-store-');
    const puts = new Map<string, number>();
    const store = (key: string, d: number): VectorStore => {
      const c = new FeatureCache(key, d, dir);
      return { get: (h) => c.get(h), put: (h, v) => (puts.set(h, (puts.get(h) ?? 0) + 1), c.put(h, v)) };
    };
    const run = extractViaQueue(images, { redis: redis.url, backbone: MOBILENET, jobSize: 48, featuresDir: dir, store });
    const killedJob = (await a.waitFor(/job (\S+): started/))[1]!;
    a.proc.kill('SIGKILL');
    const r = await run;
    expect(await a.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(a.log()).not.toMatch(new RegExp(`job ${killedJob}: done`));
    expect(r.completedBy[killedJob]).toBe('survivor');
    expect(r.failed).toEqual([]);
    expect(r.jobFailures).toEqual([]);
    expect(r.computed).toBe(images.length);
    expect(r.hashes).toEqual(hashes);
    expect(puts.size).toBe(new Set(hashes).size);
    expect([...puts.values()].every((n) => n === 1)).toBe(true);
    const diff = await maxDifference(new FeatureCache(r.key, r.dim, dir));
    console.log(`ants/bees with a worker killed during job ${killedJob}: ${JSON.stringify(r.workers)}, ${r.seconds.toFixed(1)} s, max |difference| ${diff}`);
    expect(diff).toBeLessThanOrEqual(1e-6);
    expect(await b.stop()).toEqual({ code: 0, signal: null });
  });
});
