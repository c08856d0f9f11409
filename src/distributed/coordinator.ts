/**
 * `tlearn extract --queue`: the coordinator. It loads the backbone only to know the extractor key and the
 * vector size, skips the images whose content hash it already knows and whose vector is in its features
 * store, announces its run, and puts the rest on the extractor key's BullMQ queue in jobs of `jobSize`
 * images (at most `inFlight` jobs queued at once). Every returned vector is checked and written to the
 * local store as it arrives, keyed by the image content hash the worker computed. It finishes when every
 * image is stored or reported as failed with its reason.
 *
 * Exactly once: each job is consumed once (it is tracked by id and removed when read), each content hash
 * is written once per run, and a job that a dead worker held is handed to another by BullMQ and still
 * completes only once, so a retried or repeated job can neither duplicate nor change a stored vector.
 */
import os from 'node:os';
import path from 'node:path';
import { Queue, type Job } from 'bullmq';
import type { Stats } from 'node:fs';
import type { Redis } from 'ioredis';
import { ContentHashIndex } from '../data/hash-index.js';
import type { SkippedFile } from '../data/discover.js';
import { FeatureCache, featuresRoot } from '../features/cache.js';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import { CODEC_VERSION, parseResult, type ExtractJob, type ExtractorSpec } from './codec.js';
import { bullConnection, connectRedis, redactUrl, RunRegistry } from './connection.js';
import { BULL_PREFIX, jobId, newRunId, queueName, type RunAnnouncement } from './names.js';
import { isUrl } from './sources.js';
import { openSpecExtractor, resolveSpec, type ExtractorChoice } from './spec.js';

/** Where vectors go: the features store (`FeatureCache`) or anything with its get/put. */
export interface VectorStore {
  get(contentHash: string): Promise<Float32Array | undefined>;
  put(contentHash: string, vector: Float32Array): Promise<void>;
}

export interface QueueExtractOptions extends ExtractorChoice {
  /** redis://host:port (the user's Redis; tlearn starts none). */
  redis: string;
  /** Images per job (default 32). */
  jobSize?: number;
  /** Jobs on the queue at once, waiting or in progress (default 256). */
  inFlight?: number;
  /** Tries per job when a worker errors out (default 3); a job whose worker died is handed over separately. */
  attempts?: number;
  /** The features store folder (default $TLEARN_HOME/features); its content-hash index lives there too. */
  featuresDir?: string;
  /** Opens the store instead of the FeatureCache under featuresDir (tests count writes with this). */
  store?: (key: string, dim: number) => VectorStore;
  /** How often to look for finished jobs when none arrived (default 200 ms). */
  pollMs?: number;
  /** The run's announcement expires this long after the coordinator stops refreshing it (default 60 s). */
  announceTtlMs?: number;
  /** Warn when no worker has been connected for this long (default 10 s). */
  noWorkerWarnMs?: number;
  logger?: Logger;
  /** Stops the run: queued jobs are withdrawn, what was stored stays. */
  signal?: AbortSignal;
}

export interface JobFailure {
  job: string;
  reason: string;
  images: number;
}

export interface QueueExtractResult {
  key: string;
  dim: number;
  queue: string;
  run: string;
  spec: ExtractorSpec;
  /** Distinct images asked for (a path or URL listed twice counts once). */
  images: number;
  /** Content hash per distinct image, in input order; undefined where it failed. */
  sources: string[];
  hashes: Array<string | undefined>;
  /** Images whose vector was already in the store (not sent). */
  fromStore: number;
  /** Images whose vector a worker computed in this run. */
  computed: number;
  /** Vectors written to the store in this run (once per content hash). */
  stored: number;
  /** Computed vectors not written because their content hash was already written (identical images). */
  duplicates: number;
  failed: SkippedFile[];
  /** Jobs that failed as a whole (a refusing worker, retries exhausted, a malformed result). */
  jobFailures: JobFailure[];
  /** Images computed per worker name. */
  workers: Record<string, number>;
  /** The worker that completed each job. */
  completedBy: Record<string, string>;
  jobs: number;
  seconds: number;
  /** Seconds from the first job queued to the last result stored. */
  queueSeconds: number;
  interrupted: boolean;
}

class StoreError extends Error {}

interface Pending {
  id: string;
  n: number;
  retry: number;
  /** Indices into the distinct sources. */
  idx: number[];
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((r) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      r();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

async function mapLimit<T>(items: T[], limit: number, fn: (x: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  }));
}

export async function extractViaQueue(inputs: string[], o: QueueExtractOptions): Promise<QueueExtractResult> {
  const t0 = performance.now();
  const log = o.logger ?? silentLogger;
  const jobSize = Math.max(1, o.jobSize ?? 32);
  const inFlight = Math.max(1, o.inFlight ?? 256);
  const pollMs = o.pollMs ?? 200;
  const ttl = o.announceTtlMs ?? 60_000;
  const sources = [...new Set(inputs.map((s) => (isUrl(s) ? s : path.resolve(s))))];
  const redis: Redis = await connectRedis(o.redis, { name: 'tlearn-extract' });
  let queue: Queue | undefined;
  const registry = new RunRegistry(redis);
  const run = newRunId();
  let announced = false;
  let heartbeat: NodeJS.Timeout | undefined;
  try {
    const spec = await resolveSpec(o);
    const fx = await openSpecExtractor(spec, { threads: 1, logger: log });
    const { key, dim } = fx;
    log.info(`backbone: ${fx.backbone.name} (${fx.backbone.note}), ${dim}-d features, extractor key ${key}`);
    await fx.close();
    const dir = o.featuresDir ?? featuresRoot();
    const store: VectorStore = o.store ? o.store(key, dim) : new FeatureCache(key, dim, dir);
    const index = await ContentHashIndex.open(path.join(dir, 'content-hashes.json'));
    const name = queueName(key);

    const n = sources.length;
    const hashes = new Array<string | undefined>(n);
    const resolved = new Array<boolean>(n).fill(false);
    const stats = new Array<Stats | undefined>(n);
    const failed: Array<SkippedFile & { i: number }> = [];
    const progress = log.progress(`features via ${name}`, n);
    let fromStore = 0;
    await mapLimit(sources, 16, async (src, i) => {
      if (isUrl(src)) return;
      const p = await index.peek(src);
      stats[i] = p?.stats;
      if (p?.hash && (await store.get(p.hash))) {
        hashes[i] = p.hash;
        resolved[i] = true;
        fromStore++;
        progress.tick();
      }
    });
    const todo = sources.map((_, i) => i).filter((i) => !resolved[i]);
    log.info(`${n} images: ${fromStore} already in the features store, ${todo.length} to extract on the workers of ${redactUrl(o.redis)} (queue ${name}, ${Math.ceil(todo.length / jobSize)} jobs of up to ${jobSize})`);

    const result = (interrupted: boolean, extra: Partial<QueueExtractResult>): QueueExtractResult => ({
      key,
      dim,
      queue: name,
      run,
      spec,
      images: n,
      sources,
      hashes,
      fromStore,
      computed: 0,
      stored: 0,
      duplicates: 0,
      failed: failed.sort((a, b) => a.i - b.i).map(({ path: p, reason }) => ({ path: p, reason })),
      jobFailures: [],
      workers: {},
      completedBy: {},
      jobs: 0,
      seconds: (performance.now() - t0) / 1000,
      queueSeconds: 0,
      interrupted,
      ...extra,
    });
    if (!todo.length) {
      progress.done();
      return result(false, {});
    }

    const ann: RunAnnouncement = { run, queue: name, key, dim, spec, host: os.hostname() };
    await registry.announce(ann, ttl);
    announced = true;
    heartbeat = setInterval(() => void registry.announce(ann, ttl).catch((e) => log.warn(`cannot refresh the run announcement: ${e.message}`)), Math.max(1000, ttl / 4));
    heartbeat.unref();
    queue = new Queue(name, { connection: bullConnection(o.redis), prefix: BULL_PREFIX });
    queue.on('error', () => {});

    const jobs: Pending[] = [];
    for (let k = 0; k * jobSize < todo.length; k++) jobs.push({ id: jobId(run, k), n: k, retry: 0, idx: todo.slice(k * jobSize, (k + 1) * jobSize) });
    const outstanding = new Map<string, Pending>();
    const written = new Set<string>();
    const jobFailures: JobFailure[] = [];
    const workers: Record<string, number> = {};
    const completedBy: Record<string, string> = {};
    let nextJob = 0;
    let computed = 0;
    let stored = 0;
    let duplicates = 0;
    const tq = performance.now();
    let lastWorkerSeen = performance.now();
    let lastWorkerCheck = -Infinity;
    let lastWarn = -Infinity;
    let lastLostCheck = performance.now();

    const failJob = (p: Pending, reason: string) => {
      jobFailures.push({ job: p.id, reason, images: p.idx.length });
      log.info(`error: job ${p.id} (${p.idx.length} images) failed: ${reason}`);
      for (const i of p.idx) failed.push({ i, path: sources[i]!, reason: `job failed: ${reason}` });
      progress.tick(p.idx.length);
    };

    const enqueue = async (list: Pending[]) => {
      if (!list.length) return;
      await queue!.addBulk(
        list.map((p) => {
          const data: ExtractJob = { v: CODEC_VERSION, run, key, dim, spec, items: p.idx.map((i) => sources[i]!) };
          return {
            name: 'extract',
            data,
            opts: { jobId: p.id, attempts: Math.max(1, o.attempts ?? 3), backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: { age: 86_400 }, removeOnFail: { age: 86_400 } },
          };
        }),
      );
      for (const p of list) outstanding.set(p.id, p);
    };

    const consume = async (p: Pending, job: Job | undefined, state: 'completed' | 'failed'): Promise<void> => {
      outstanding.delete(p.id);
      if (!job) return failJob(p, 'the job disappeared from Redis before its result was read');
      if (state === 'failed') {
        failJob(p, job.failedReason || 'unknown error');
      } else {
        let r;
        try {
          r = parseResult(job.returnvalue, { key, dim, items: p.idx.map((i) => sources[i]!) });
        } catch (e: any) {
          failJob(p, e.message);
        }
        if (r?.skipped) {
          // the worker saw no live announcement (this coordinator stalled past its TTL): ask again
          log.warn(`job ${p.id} was skipped by worker ${r.worker} (${r.skipped}); queueing it again`);
          await registry.announce(ann, ttl);
          await enqueue([{ ...p, retry: p.retry + 1, id: jobId(run, p.n, p.retry + 1) }]);
        } else if (r) {
          completedBy[p.id] = r.worker;
          r.items.forEach((it, k) => {
            const i = p.idx[k]!;
            if ('error' in it) failed.push({ i, path: sources[i]!, reason: it.error });
          });
          for (let k = 0; k < p.idx.length; k++) {
            const i = p.idx[k]!;
            const v = r.vectors[k];
            const it = r.items[k]!;
            if (!v || 'error' in it) continue;
            if (resolved[i]) continue;
            if (!written.has(it.hash)) {
              await store.put(it.hash, v).catch((e) => {
                throw new StoreError(`cannot write to the features store: ${e?.message ?? e}`);
              });
              written.add(it.hash);
              stored++;
            } else duplicates++;
            resolved[i] = true;
            hashes[i] = it.hash;
            computed++;
            workers[r.worker] = (workers[r.worker] ?? 0) + 1;
            const st = stats[i];
            if (st && st.size === it.size) index.remember(sources[i]!, st, it.hash);
          }
          progress.tick(p.idx.length);
        }
      }
      await job.remove().catch(() => {});
    };

    const sweep = async (): Promise<number> => {
      const ids = [...outstanding.keys()];
      if (!ids.length) return 0;
      const pipe = redis.pipeline();
      for (const id of ids) pipe.zscore(queue!.keys.completed!, id).zscore(queue!.keys.failed!, id);
      const res = (await pipe.exec()) ?? [];
      let got = 0;
      for (let k = 0; k < ids.length; k++) {
        const done = res[2 * k]?.[1] != null ? 'completed' : res[2 * k + 1]?.[1] != null ? 'failed' : undefined;
        if (!done) continue;
        const p = outstanding.get(ids[k]!)!;
        await consume(p, await queue!.getJob(p.id), done);
        got++;
      }
      return got;
    };

    /** Jobs that vanished (e.g. Redis evicting keys) are queued again, twice at most. */
    const checkLost = async () => {
      const ids = [...outstanding.keys()];
      const pipe = redis.pipeline();
      for (const id of ids) pipe.exists(queue!.toKey(id));
      const res = (await pipe.exec()) ?? [];
      const again: Pending[] = [];
      ids.forEach((id, k) => {
        if (res[k]?.[1] !== 0) return;
        const p = outstanding.get(id)!;
        outstanding.delete(id);
        if (p.retry >= 2) failJob(p, 'the job vanished from Redis three times (BullMQ needs maxmemory-policy noeviction)');
        else again.push({ ...p, retry: p.retry + 1, id: jobId(run, p.n, p.retry + 1) });
      });
      if (again.length) log.warn(`${again.length} job${again.length > 1 ? 's' : ''} vanished from Redis (restarted without persistence?); queueing ${again.length > 1 ? 'them' : 'it'} again`);
      await enqueue(again);
    };

    const checkWorkers = async () => {
      const count = await queue!.getWorkersCount().catch(() => -1);
      const now = performance.now();
      if (count !== 0) lastWorkerSeen = now;
      else if (now - lastWorkerSeen > (o.noWorkerWarnMs ?? 10_000) && now - lastWarn > 60_000) {
        lastWarn = now;
        log.warn(`no worker is serving ${name} yet: start \`tlearn worker --queue ${redactUrl(o.redis)}\` on the machines that should extract (waiting)`);
      }
    };

    let interrupted = false;
    let failingSince: number | undefined;
    let lastError = '';
    while (nextJob < jobs.length || outstanding.size) {
      if (o.signal?.aborted) {
        interrupted = true;
        break;
      }
      let got = 0;
      try {
        if (outstanding.size < inFlight && nextJob < jobs.length) {
          const add = jobs.slice(nextJob, nextJob + (inFlight - outstanding.size));
          await enqueue(add);
          nextJob += add.length;
        }
        got = await sweep();
        const now = performance.now();
        if (now - lastWorkerCheck > 2000) {
          lastWorkerCheck = now;
          await checkWorkers();
        }
        if (now - lastLostCheck > 15_000) {
          lastLostCheck = now;
          await checkLost();
        }
        failingSince = undefined;
        lastError = '';
      } catch (e: any) {
        if (e instanceof StoreError) throw e;
        // Redis unreachable for a while: keep waiting (workers do too), say so once, give up after 5 minutes
        const msg = String(e?.message ?? e);
        failingSince ??= performance.now();
        if (performance.now() - failingSince > 300_000) throw new Error(`lost Redis at ${redactUrl(o.redis)} for 5 minutes (${msg}); the ${stored} vectors stored so far are kept`);
        if (msg !== lastError) log.warn(`Redis: ${msg} (retrying)`);
        lastError = msg;
        await sleep(2000, o.signal);
      }
      if (!got) await sleep(pollMs, o.signal);
    }
    progress.done();
    if (interrupted) {
      await registry.withdraw(run).catch(() => {});
      announced = false;
      await Promise.all([...outstanding.keys()].map((id) => queue!.remove(id).catch(() => 0)));
      log.info(`interrupted: ${stored} vectors stored in this run are kept; run the same command again to extract the rest`);
    }
    await index.save();
    return result(interrupted, { computed, stored, duplicates, jobFailures, workers, completedBy, jobs: jobs.length, queueSeconds: (performance.now() - tq) / 1000 });
  } finally {
    if (heartbeat) clearInterval(heartbeat);
    if (announced) await registry.withdraw(run).catch(() => {});
    await queue?.close().catch(() => {});
    redis.disconnect();
  }
}
