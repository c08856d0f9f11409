/**
 * `tlearn worker`: serves the extraction queues that running coordinators announce. For each, it loads the
 * announced backbone (from its own cache, the zoo, or the shared filesystem) exactly as a local run does,
 * checks that its extractor key is the coordinator's, and then takes jobs: it reads each image (a path or
 * an http(s) URL), runs the same decode and forward pass as `tlearn train` (src/features/extract.ts) and
 * returns the vectors as the job's result. A worker that cannot produce the coordinator's vectors (another
 * backbone, weights that differ, a backbone it cannot load) refuses a job with the reason, so that the
 * coordinator reports it, and stops serving that queue.
 *
 * Stopping: close() lets the jobs in progress finish (SIGTERM in the CLI). A worker that dies holding a job
 * loses its lock; BullMQ's stalled-job check in another worker puts the job back on the queue.
 */
import os from 'node:os';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { FeatureExtractor } from '../features/extract.js';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import { CODEC_VERSION, encodeVector, parseJob, type ExtractJobResult, type ItemResult } from './codec.js';
import { bullConnection, connectRedis, redactUrl, RunRegistry } from './connection.js';
import { BULL_PREFIX, type RunAnnouncement } from './names.js';
import { readSource, type PathMap } from './sources.js';
import { openSpecExtractor } from './spec.js';

export interface ExtractionWorkerOptions {
  /** redis://host:port of the coordinators' Redis. */
  redis: string;
  /** Jobs processed at once by this process (default 1). */
  concurrency?: number;
  /** Use this backbone (zoo name or folder) instead of the one each extraction names; its key must still match. */
  backbone?: string;
  /** onnxruntime threads (default: all cores). */
  threads?: number;
  /** Shown in logs and in the coordinator's report (default host:pid). */
  name?: string;
  /** How long a job's lock lasts without renewal; a dead worker's job is taken over after about this long (default 30 s). */
  lockDurationMs?: number;
  /** How often this worker looks for jobs whose worker died (default 30 s). */
  stalledIntervalMs?: number;
  /** A job whose worker died more often than this fails (default 2). */
  maxStalledCount?: number;
  /** How often to look for new extractions (default 2 s). */
  pollMs?: number;
  /** Stop serving a queue this long after its last run ended (default 60 s), keeping the backbone loaded meanwhile. */
  idleMs?: number;
  pathMaps?: PathMap[];
  /** Per image URL (default 30 s). */
  fetchTimeoutMs?: number;
  logger?: Logger;
}

export interface WorkerStats {
  jobs: number;
  images: number;
  failedImages: number;
  refusedJobs: number;
}

export interface ExtractionWorker {
  readonly name: string;
  readonly stats: WorkerStats;
  /** Stops taking jobs; waits for the jobs in progress unless `force`. */
  close(force?: boolean): Promise<void>;
}

interface Served {
  queue: string;
  key: string;
  worker?: Worker;
  fx?: FeatureExtractor;
  /** Why this worker cannot serve the queue; jobs get this as their failure. */
  refusal?: string;
  lastLive: number;
  closing?: Promise<void>;
}


export async function startExtractionWorker(o: ExtractionWorkerOptions): Promise<ExtractionWorker> {
  const log = o.logger ?? silentLogger;
  const name = o.name ?? `${os.hostname()}:${process.pid}`;
  const redis: Redis = await connectRedis(o.redis, { name: `tlearn-worker:${name}` });
  const registry = new RunRegistry(redis);
  const stats: WorkerStats = { jobs: 0, images: 0, failedImages: 0, refusedJobs: 0 };
  const served = new Map<string, Served>();
  const refusedQueues = new Set<string>();
  const pollMs = o.pollMs ?? 2000;
  const idleMs = o.idleMs ?? 60_000;
  let stopping = false;
  let lastRedisError = '';
  let wake = () => {};
  const sleep = (ms: number) =>
    new Promise<void>((r) => {
      const t = setTimeout(r, ms);
      wake = () => (clearTimeout(t), r());
    });

  const processJob = async (s: Served, job: Job): Promise<ExtractJobResult> => {
    let data;
    try {
      data = parseJob(job.data);
    } catch (e: any) {
      throw new UnrecoverableError(`worker ${name}: malformed job: ${e.message}`);
    }
    if (!(await registry.alive(data.run))) {
      return { v: CODEC_VERSION, key: data.key, dim: data.dim, worker: name, items: [], seconds: 0, skipped: 'its coordinator run has ended' };
    }
    if (s.refusal || !s.fx || data.key !== s.fx.key) {
      stats.refusedJobs++;
      const why = s.refusal ?? `this worker's extractor is ${s.fx?.key}, the job's is ${data.key}`;
      log.info(`error: job ${job.id}: refused: ${why}`);
      setImmediate(() => void stopServing(s, 'it refused a job'));
      throw new UnrecoverableError(`worker ${name} refused the job: ${why}`);
    }
    const fx = s.fx;
    const t0 = performance.now();
    log.info(`job ${job.id}: started, ${data.items.length} images${job.attemptsStarted > 1 ? ` (attempt ${job.attemptsStarted})` : ''}`);
    const sizes = new Map<string, number>();
    const read = async (src: string) => {
      const b = await readSource(src, { maps: o.pathMaps, timeoutMs: o.fetchTimeoutMs });
      sizes.set(src, b.length);
      return b;
    };
    const set = await fx.extract(data.items, `job ${job.id}`, { read });
    const reasons = new Map(set.failed.map((f) => [f.path, f.reason]));
    const items: ItemResult[] = data.items.map((src, i) =>
      set.ok[i] && set.hashes[i]
        ? { hash: set.hashes[i]!, size: sizes.get(src) ?? -1, vector: encodeVector(set.features.subarray(i * set.dim, (i + 1) * set.dim)) }
        : { error: reasons.get(src) ?? 'not processed' },
    );
    const failed = items.filter((it) => 'error' in it).length;
    const seconds = (performance.now() - t0) / 1000;
    stats.jobs++;
    stats.images += items.length - failed;
    stats.failedImages += failed;
    log.info(`job ${job.id}: done, ${items.length - failed} vectors${failed ? `, ${failed} failed` : ''} in ${seconds.toFixed(2)} s`);
    return { v: CODEC_VERSION, key: fx.key, dim: fx.dim, worker: name, items, seconds };
  };

  async function stopServing(s: Served, why: string): Promise<void> {
    if (s.closing) return s.closing;
    s.closing = (async () => {
      if (s.refusal) refusedQueues.add(s.queue);
      log.info(`stopped serving ${s.queue}: ${why}`);
      await s.worker?.close();
      await s.fx?.close();
      served.delete(s.queue);
    })();
    return s.closing;
  }

  const serve = async (a: RunAnnouncement): Promise<void> => {
    const s: Served = { queue: a.queue, key: a.key, lastLive: Date.now() };
    served.set(a.queue, s);
    const what = o.backbone ? `${o.backbone} (--backbone, instead of the extraction's ${a.spec.backbone})` : a.spec.backbone;
    log.info(`serving ${a.queue} for run ${a.run} from ${a.host}: backbone ${what}`);
    try {
      // warnings from loading the backbone are shown; per-job progress bars are not (one line per job instead)
      s.fx = await openSpecExtractor(a.spec, { backbone: o.backbone, threads: o.threads, logger: { ...log, progress: silentLogger.progress } });
      if (s.fx.key !== a.key || s.fx.dim !== a.dim) {
        s.refusal =
          `its backbone ${what} gives extractor key ${s.fx.key} (${s.fx.dim}-d features, backbone id ${s.fx.backbone.id}), ` +
          `but the extraction needs ${a.key} (${a.dim}-d): the weights, preprocessing or input differ, so its vectors would be wrong`;
      } else {
        log.info(`${a.queue}: ${s.fx.backbone.name} (${s.fx.backbone.note}), ${s.fx.dim}-d features, ${s.fx.runtime}`);
      }
    } catch (e: any) {
      s.refusal = `it cannot load the backbone ${what}: ${String(e?.message ?? e).split('\n')[0]}`;
    }
    if (s.refusal) log.info(`error: ${a.queue}: this worker will refuse jobs: ${s.refusal}`);
    if (stopping) {
      await s.fx?.close();
      return;
    }
    s.worker = new Worker(a.queue, (job) => processJob(s, job), {
      connection: bullConnection(o.redis),
      prefix: BULL_PREFIX,
      name,
      concurrency: s.refusal ? 1 : (o.concurrency ?? 1),
      lockDuration: o.lockDurationMs ?? 30_000,
      stalledInterval: o.stalledIntervalMs ?? 30_000,
      maxStalledCount: o.maxStalledCount ?? 2,
    });
    s.worker.on('error', (e) => {
      const msg = String(e?.message ?? e);
      if (msg !== lastRedisError) log.warn(`${a.queue}: ${msg}`);
      lastRedisError = msg;
    });
    s.worker.on('failed', (job, e) => {
      if (job && !(e instanceof UnrecoverableError)) log.warn(`job ${job.id} failed: ${e.message}`);
    });
  };

  const discover = async (): Promise<void> => {
    const live = await registry.live();
    const now = Date.now();
    for (const a of live) {
      const s = served.get(a.queue);
      if (s) s.lastLive = now;
      else if (!refusedQueues.has(a.queue) && !stopping) await serve(a);
    }
    for (const s of served.values()) if (!s.closing && now - s.lastLive > idleMs) void stopServing(s, 'no extraction has used it for a while');
  };

  const loop = (async () => {
    while (!stopping) {
      try {
        await discover();
        lastRedisError = '';
      } catch (e: any) {
        const msg = String(e?.message ?? e);
        if (msg !== lastRedisError) log.warn(`cannot read the extraction registry: ${msg} (retrying)`);
        lastRedisError = msg;
      }
      await sleep(pollMs);
    }
  })();

  log.info(`worker ${name}: waiting for extractions on ${redactUrl(o.redis)}`);
  return {
    name,
    stats,
    async close(force = false) {
      stopping = true;
      wake();
      await loop;
      await Promise.all([...served.values()].map(async (s) => {
        await s.worker?.close(force);
        await s.fx?.close();
      }));
      served.clear();
      redis.disconnect();
    },
  };
}
