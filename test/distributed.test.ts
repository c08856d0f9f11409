/**
 * Feature extraction over BullMQ: a local redis-server, `tlearn worker` processes, the coordinator in this
 * process (to count every write to the store) or as `tlearn extract`. Fixtures: generated images and a tiny
 * backbone; the same on ants/bees with MobileNetV2 is in distributed-shared.test.ts.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadBackbone } from '../src/backbones/load.js';
import { decodeVector, encodeVector, parseJob, parseResult } from '../src/distributed/codec.js';
import { extractViaQueue, type QueueExtractResult, type VectorStore } from '../src/distributed/coordinator.js';
import { mapPath, parsePathMap, readSource, readSourceList } from '../src/distributed/sources.js';
import { FeatureCache } from '../src/features/cache.js';
import { extractFeatures } from '../src/features/extract.js';
import { connectRedis, RunRegistry } from '../src/distributed/connection.js';
import { sha256 } from '../src/util/hash.js';
import { silentLogger, type Logger } from '../src/util/log.js';
import { makeDataset, makeTinyBackbone, runCli, tmpDir } from './helpers.js';
import { closedPort, hasRedis, serveFiles, spawnWorker, startRedis, type ImageServer, type RedisServer, type WorkerProc } from './redis.js';

describe('job and result codecs', () => {
  it('vectors survive base64 bit for bit; a wrong length is refused', () => {
    const v = new Float32Array([0, -0, 1.5, -3.25e-20, 6.0000005, Number.MAX_VALUE > 1 ? 3.4028234663852886e38 : 0, 1e-45]);
    const s = encodeVector(v);
    expect(s).toBe(Buffer.from(new Uint8Array(v.buffer)).toString('base64'));
    expect(Array.from(decodeVector(s, v.length))).toEqual(Array.from(v));
    expect(() => decodeVector(s, v.length + 1)).toThrow(/28 bytes, expected 32/);
    // a row inside a bigger array (as workers encode them) carries only its own values
    const rows = new Float32Array([9, 9, 1.25, -2.5, 9]);
    expect(Array.from(decodeVector(encodeVector(rows.subarray(2, 4)), 2))).toEqual([1.25, -2.5]);
  });

  it('malformed jobs and results are refused with what is wrong', () => {
    const job = { v: 1, run: 'r', key: 'k1', dim: 2, spec: { backbone: 'b', kernel: 'linear' }, items: ['/a.jpg'] };
    expect(parseJob(job).items).toEqual(['/a.jpg']);
    expect(() => parseJob({ ...job, v: 2 })).toThrow(/format version 2/);
    expect(() => parseJob({ ...job, items: [3] })).toThrow(/paths or URLs/);
    expect(() => parseJob({ ...job, spec: { backbone: 'b', kernel: 'bogus' } })).toThrow(/kernel 'bogus'/);
    const vec = encodeVector(new Float32Array([1, 2]));
    const good = { v: 1, key: 'k1', dim: 2, worker: 'w', seconds: 0, items: [{ hash: 'a'.repeat(64), size: 3, vector: vec }] };
    expect(Array.from(parseResult(good, job).vectors[0]!)).toEqual([1, 2]);
    expect(() => parseResult({ ...good, key: 'k2' }, job)).toThrow(/worker w computed vectors for extractor k2 \(2-d\), but this extraction is k1/);
    expect(() => parseResult({ ...good, items: [] }, job)).toThrow(/returned 0 results for 1 images/);
    expect(() => parseResult({ ...good, items: [{ hash: 'x', size: 1, vector: vec }] }, job)).toThrow(/malformed result for \/a.jpg/);
    expect(parseResult({ ...good, items: [{ error: 'nope' }] }, job).vectors).toEqual([undefined]);
  });
});

describe('image sources', () => {
  it('list files: paths relative to the list, URLs, comments; other schemes refused', async () => {
    const dir = tmpDir();
    await fs.writeFile(path.join(dir, 'list.txt'), '# images\nsub/a.jpg\n\n/abs/b.png\r\nhttps://example.com/c.jpg\n');
    expect(await readSourceList(path.join(dir, 'list.txt'))).toEqual([path.join(dir, 'sub/a.jpg'), '/abs/b.png', 'https://example.com/c.jpg']);
    await fs.writeFile(path.join(dir, 'bad.txt'), 'a.jpg\nftp://x/y.jpg\n');
    await expect(readSourceList(path.join(dir, 'bad.txt'))).rejects.toThrow(/bad.txt:2: only http\(s\) URLs and paths/);
  });

  it('path maps rewrite only whole leading components', () => {
    const maps = [parsePathMap('/data/imgs=/mnt/share')];
    expect(mapPath('/data/imgs/a/b.jpg', maps)).toBe('/mnt/share/a/b.jpg');
    expect(mapPath('/data/imgsX/b.jpg', maps)).toBe('/data/imgsX/b.jpg');
    expect(() => parsePathMap('relative=/x')).toThrow(/both absolute/);
  });

  it('URLs: bytes, HTTP errors and unreachable servers as reasons', async () => {
    const dir = tmpDir();
    await fs.writeFile(path.join(dir, 'x.jpg'), Buffer.from([1, 2, 3]));
    const srv = await serveFiles(dir);
    try {
      expect(Array.from(await readSource(`${srv.url}/x.jpg`))).toEqual([1, 2, 3]);
      await expect(readSource(`${srv.url}/missing.jpg`)).rejects.toMatchObject({ reason: 'cannot fetch (HTTP 404 Not Found)' });
      const port = await closedPort();
      await expect(readSource(`http://127.0.0.1:${port}/a.jpg`)).rejects.toMatchObject({ reason: expect.stringMatching(/^cannot fetch \(ECONNREFUSED/) });
      await expect(readSource(path.join(dir, 'nope.jpg'))).rejects.toMatchObject({ reason: 'cannot read file (ENOENT)' });
    } finally {
      await srv.close();
    }
  });
});

/** The store, counting every write per content hash. */
function countingStore(dir: string, puts: Map<string, number>) {
  return (key: string, dim: number): VectorStore => {
    const c = new FeatureCache(key, dim, dir);
    return {
      get: (h) => c.get(h),
      put: async (h, v) => {
        puts.set(h, (puts.get(h) ?? 0) + 1);
        await c.put(h, v);
      },
    };
  };
}

describe.runIf(hasRedis('distributed extraction tests'))('extraction over BullMQ with tlearn worker processes', () => {
  let redis: RedisServer;
  let data: string;
  let backbone: string;
  let otherBackbone: string;
  let images: string[];
  let reference: Map<string, Float32Array>;
  const workers: WorkerProc[] = [];
  const servers: ImageServer[] = [];
  const worker = (name: string, args: string[] = []) => {
    const w = spawnWorker(redis.url, name, args, { TLEARN_HOME: tmpDir('tlearn-worker-home-') });
    workers.push(w);
    return w;
  };

  beforeAll(async () => {
    redis = await startRedis();
    data = await makeDataset(tmpDir(), { classes: { red: 14, green: 14, blue: 14 }, seed: 7 });
    backbone = await makeTinyBackbone(tmpDir());
    otherBackbone = await makeTinyBackbone(tmpDir(), 32, 99);
    const bytes = await fs.readFile(path.join(data, 'red', 'img_000.jpg'));
    await fs.writeFile(path.join(data, 'red', 'truncated.jpg'), bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    await fs.writeFile(path.join(data, 'green', 'copy_of_red_000.jpg'), bytes);
    images = (await Promise.all(['red', 'green', 'blue'].map(async (c) => (await fs.readdir(path.join(data, c))).map((f) => path.join(data, c, f))))).flat().sort();
    const bb = await loadBackbone(backbone);
    const ref = await extractFeatures(images, bb, { cache: false });
    reference = new Map();
    images.forEach((p, i) => ref.ok[i] && reference.set(p, ref.features.slice(i * ref.dim, (i + 1) * ref.dim)));
    expect(reference.size).toBe(images.length - 1);
  });

  afterAll(async () => {
    for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
    for (const s of servers) await s.close();
    await redis?.stop();
  });

  /** Every stored vector equals the single-process one (max |difference| <= 1e-6) and was written once. */
  async function checkStore(r: QueueExtractResult, dir: string, puts: Map<string, number>, want: Map<string, Float32Array>) {
    const store = new FeatureCache(r.key, r.dim, dir);
    let maxDiff = 0;
    for (const [src, ref] of want) {
      const i = r.sources.indexOf(src);
      expect(i, src).toBeGreaterThanOrEqual(0);
      const h = r.hashes[i];
      expect(h, src).toBeDefined();
      const v = (await store.get(h!))!;
      expect(v, src).toBeDefined();
      for (let k = 0; k < ref.length; k++) maxDiff = Math.max(maxDiff, Math.abs(v[k]! - ref[k]!));
    }
    expect(maxDiff).toBeLessThanOrEqual(1e-6);
    const distinct = new Set(r.hashes.filter(Boolean));
    expect([...puts.values()].every((n) => n === 1)).toBe(true);
    expect(puts.size).toBe(distinct.size);
    expect(r.stored).toBe(distinct.size);
    return maxDiff;
  }

  it('two workers: vectors equal single-process extraction, each stored once; bad files, URLs and 404s fail with reasons', async () => {
    const srv = await serveFiles(data);
    servers.push(srv);
    const dead = await closedPort();
    const w1 = worker('w1');
    const w2 = worker('w2');
    await Promise.all([w1.waitFor(/waiting for extractions/), w2.waitFor(/waiting for extractions/)]);
    const missing = path.join(data, 'blue', 'was_never_there.jpg');
    const urlGood = `${srv.url}/blue/img_003.jpg`;
    const url404 = `${srv.url}/blue/nope.jpg`;
    const urlDead = `http://127.0.0.1:${dead}/x.jpg`;
    const dir = tmpDir('tlearn-store-');
    const puts = new Map<string, number>();
    const r = await extractViaQueue([...images, missing, urlGood, url404, urlDead, images[0]!], {
      redis: redis.url,
      backbone,
      jobSize: 6,
      featuresDir: dir,
      store: countingStore(dir, puts),
    });
    expect(r.images).toBe(images.length + 4);
    expect(r.jobFailures).toEqual([]);
    const reasons = Object.fromEntries(r.failed.map((f) => [f.path, f.reason]));
    expect(reasons).toEqual({
      [path.join(data, 'red', 'truncated.jpg')]: expect.stringMatching(/truncated JPEG/),
      [missing]: 'cannot read file (ENOENT)',
      [url404]: 'cannot fetch (HTTP 404 Not Found)',
      [urlDead]: expect.stringMatching(/^cannot fetch \(ECONNREFUSED/),
    });
    expect(r.computed).toBe(images.length - 1 + 1);
    // the copy and the URL have the content of files in the set: computed, but written once per content
    expect(r.duplicates).toBe(2);
    expect(r.hashes[r.sources.indexOf(urlGood)]).toBe(sha256(await fs.readFile(path.join(data, 'blue', 'img_003.jpg'))));
    const maxDiff = await checkStore(r, dir, puts, new Map([...reference, [urlGood, reference.get(path.join(data, 'blue', 'img_003.jpg'))!]]));
    console.log(`fixture: ${r.computed} vectors from workers ${JSON.stringify(r.workers)}, max |difference| from single-process ${maxDiff}`);
    expect(Object.values(r.workers).reduce((a, b) => a + b, 0)).toBe(r.computed);

    // a second run finds everything in the store (no jobs); the URL and failed images are sent again
    const again = await extractViaQueue(images, { redis: redis.url, backbone, jobSize: 6, featuresDir: dir, store: countingStore(dir, puts) });
    expect(again.fromStore).toBe(images.length - 1);
    expect(again.jobs).toBe(1);
    expect(again.failed.map((f) => path.basename(f.path))).toEqual(['truncated.jpg']);

    expect(await w1.stop()).toEqual({ code: 0, signal: null });
    expect(await w2.stop()).toEqual({ code: 0, signal: null });
    expect(w1.log()).toMatch(/SIGTERM: finishing the jobs in progress/);
  });

  it('a worker SIGKILLed mid-job: its job is taken over, all vectors arrive, none twice; SIGTERM mid-job finishes the job and exits 0', async () => {
    // each image URL answers after 400 ms, so a job is surely in progress when its worker gets the signal
    const srv = await serveFiles(data, 400);
    servers.push(srv);
    const okImages = [...reference.keys()].slice(0, 30);
    const urls = okImages.map((p) => `${srv.url}/${path.relative(data, p)}`);
    const a = worker('killed');
    const b = worker('survivor');
    const c = worker('terminated');
    await Promise.all([a, b, c].map((w) => w.waitFor(/waiting for extractions/)));
    const dir = tmpDir('tlearn-store-');
    const puts = new Map<string, number>();
    const run = extractViaQueue(urls, { redis: redis.url, backbone, jobSize: 3, featuresDir: dir, store: countingStore(dir, puts) });
    const [killedJob, terminatedJob] = await Promise.all([
      a.waitFor(/job (\S+): started/).then((m) => (a.proc.kill('SIGKILL'), m[1]!)),
      c.waitFor(/job (\S+): started/).then((m) => (c.proc.kill('SIGTERM'), m[1]!)),
    ]);
    const r = await run;
    expect(await a.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await c.exited).toEqual({ code: 0, signal: null });
    expect(c.log()).toMatch(new RegExp(`job ${terminatedJob}: done`));
    expect(a.log()).not.toMatch(new RegExp(`job ${killedJob}: done`));
    expect(r.completedBy[killedJob]).toBe('survivor');
    expect(r.completedBy[terminatedJob]).toBe('terminated');
    expect(r.failed).toEqual([]);
    expect(r.jobFailures).toEqual([]);
    expect(r.computed).toBe(urls.length);
    await checkStore(r, dir, puts, new Map(okImages.map((p, i) => [urls[i]!, reference.get(p)!])));
    expect(await b.stop()).toEqual({ code: 0, signal: null });
  });

  it('tlearn extract --queue, a second run from the store, then tlearn train from the store; a worker with another backbone refuses loudly', async () => {
    const home = tmpDir('tlearn-coordinator-home-');
    const env = { TLEARN_HOME: home };
    const w = worker('cli-worker', ['--concurrency', '2']);
    await w.waitFor(/waiting for extractions/);
    const first = await runCli(['extract', data, '--backbone', backbone, '--queue', redis.url, '--job-size', '8', '--json'], env);
    expect(first.code, first.stderr).toBe(0);
    const j1 = JSON.parse(first.stdout);
    expect(j1).toMatchObject({ images: images.length, computed: images.length - 1, fromStore: 0, duplicates: 1, jobs: 6 });
    expect(j1.failed).toEqual([{ path: path.join(data, 'red', 'truncated.jpg'), reason: expect.stringMatching(/truncated JPEG/) }]);
    expect(first.stderr).toMatch(/features via tlearn-extract-\w+: \d+\/\d+/);
    expect(first.stderr).toMatch(/stored \d+ new vectors/);
    const second = await runCli(['extract', data, '--backbone', backbone, '--queue', redis.url, '--json'], env);
    expect(JSON.parse(second.stdout)).toMatchObject({ fromStore: images.length - 1, computed: 0, jobs: 1 });
    // --force: the dataset holds a red image copied into green on purpose (stored once), a label conflict train stops on
    const train = await runCli(['train', data, '--backbone', backbone, '--epochs', '2', '--force', '--out', path.join(tmpDir(), 'run'), '--json'], env);
    expect(train.code, train.stderr).toBe(0);
    expect(JSON.parse(train.stdout).features.computed).toBe(0);
    expect(await w.stop()).toEqual({ code: 0, signal: null });

    const bad = worker('wrong-backbone', ['--backbone', otherBackbone]);
    await bad.waitFor(/waiting for extractions/);
    const fresh = { TLEARN_HOME: tmpDir('tlearn-coordinator-home-') };
    const refused = await runCli(['extract', data, '--backbone', backbone, '--queue', redis.url, '--job-size', '100', '--json'], fresh);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/error: job \S+ \(\d+ images\) failed: worker wrong-backbone refused the job: its backbone .* gives extractor key \w+ .* but the extraction needs \w+ .*its vectors would be wrong/);
    const j = JSON.parse(refused.stdout);
    expect(j).toMatchObject({ stored: 0, computed: 0 });
    expect(j.jobFailures).toHaveLength(1);
    expect(j.failed).toHaveLength(images.length);
    await bad.waitFor(/stopped serving/);
    expect(await bad.stop()).toEqual({ code: 0, signal: null });
  });

  it('clear errors: a bad Redis URL, an unreachable Redis, a missing dataset; --help explains every flag', async () => {
    const badUrl = await runCli(['extract', data, '--queue', 'http://localhost:6379']);
    expect(badUrl.code).toBe(1);
    expect(badUrl.stderr).toMatch(/--queue must be a redis:\/\/ or rediss:\/\/ URL, got 'http:\/\/localhost:6379'/);
    const port = await closedPort();
    const down = await runCli(['worker', '--queue', `redis://127.0.0.1:${port}`]);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(new RegExp(`cannot connect to Redis at redis://127.0.0.1:${port}: connect ECONNREFUSED`));
    const nodata = await runCli(['extract', path.join(tmpDir(), 'nothing'), '--queue', redis.url]);
    expect(nodata.stderr).toMatch(/nothing does not exist \(expected a dataset folder or a list file/);
    const eh = await runCli(['extract', '--help']);
    for (const f of ['--queue', '--job-size', '--in-flight', '--attempts', '--backbone', '--exclude', '--preprocess', '--resize', '--cut-at', '--threads', '--json']) expect(eh.stdout, f).toContain(f);
    const wh = await runCli(['worker', '--help']);
    for (const f of ['--queue', '--concurrency', '--threads', '--backbone', '--path-map', '--name', '--lock-duration', '--stalled-interval', '--poll', '--fetch-timeout']) expect(wh.stdout, f).toContain(f);
    expect(wh.stdout).toMatch(/SIGTERM/);
  });

  it('--path-map: a worker reads the coordinator\'s paths where the share is mounted on its machine', async () => {
    const mount = path.join(tmpDir(), 'mounted-elsewhere');
    await fs.cp(data, mount, { recursive: true });
    await fs.rm(path.join(mount, 'blue', 'img_001.jpg'));
    const w = worker('mapped', ['--path-map', `${data}=${mount}`]);
    await w.waitFor(/waiting for extractions/);
    const some = ['red/img_002.jpg', 'blue/img_001.jpg', 'green/img_004.jpg'].map((f) => path.join(data, f));
    const dir = tmpDir('tlearn-store-');
    const r = await extractViaQueue(some, { redis: redis.url, backbone, featuresDir: dir });
    expect(r.failed).toEqual([{ path: some[1], reason: `cannot read file (ENOENT) at ${path.join(mount, 'blue', 'img_001.jpg')}` }]);
    expect(r.computed).toBe(2);
    const stored = await new FeatureCache(r.key, r.dim, dir).get(r.hashes[0]!);
    expect(Array.from(stored!)).toEqual(Array.from(reference.get(some[0]!)!));
    expect(await w.stop()).toEqual({ code: 0, signal: null });
  });

  it('with no worker: the coordinator says so; an interrupt withdraws its run and its queued jobs', async () => {
    const lines: string[] = [];
    const logger: Logger = { info: (m) => lines.push(m), warn: (m) => lines.push(`warning: ${m}`), progress: silentLogger.progress };
    const abort = new AbortController();
    const run = extractViaQueue(images.slice(0, 10), { redis: redis.url, backbone, jobSize: 2, featuresDir: tmpDir(), logger, signal: abort.signal, noWorkerWarnMs: 300 });
    await vi.waitFor(() => expect(lines.join('\n')).toMatch(/warning: no worker is serving tlearn-extract-\w+ yet: start `tlearn worker --queue redis:\/\/127.0.0.1:\d+`/), { timeout: 30_000, interval: 100 });
    const client = await connectRedis(redis.url);
    const registry = new RunRegistry(client);
    expect((await registry.live()).map((a) => a.spec.backbone)).toEqual([backbone]);
    abort.abort();
    const r = await run;
    expect(r).toMatchObject({ interrupted: true, stored: 0, computed: 0, jobs: 5 });
    expect(lines.join('\n')).toMatch(/interrupted: 0 vectors stored in this run are kept; run the same command again/);
    expect(await registry.live()).toEqual([]);
    client.disconnect();
    const q = new Queue(r.queue, { connection: { url: redis.url } });
    expect(await q.getJobCounts('waiting', 'active', 'delayed')).toEqual({ waiting: 0, active: 0, delayed: 0 });
    await q.close();
  });

  it('tlearn extract without --queue fills the same store the coordinator reads', async () => {
    const env = { TLEARN_HOME: tmpDir('tlearn-local-home-') };
    const local = await runCli(['extract', data, '--backbone', backbone, '--json'], env);
    expect(local.code, local.stderr).toBe(0);
    expect(JSON.parse(local.stdout)).toMatchObject({ images: images.length, computed: images.length - 1 });
    // only the truncated image (not stored) goes to the queue
    const w = worker('after-local');
    const queued = await runCli(['extract', data, '--backbone', backbone, '--queue', redis.url, '--json'], env);
    expect(queued.code, queued.stderr).toBe(0);
    expect(JSON.parse(queued.stdout)).toMatchObject({ fromStore: images.length - 1, computed: 0, jobs: 1, failed: [{ path: path.join(data, 'red', 'truncated.jpg') }] });
    expect(await w.stop()).toEqual({ code: 0, signal: null });
  });
});
