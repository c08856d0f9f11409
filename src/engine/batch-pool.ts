/**
 * A small pool of worker threads (node:worker_threads) that make the inputs of training and evaluation batches
 * (engine/batch-task.ts) while onnxruntime, which runs a session synchronously on the main thread, trains on the
 * current batch. The batch tensor is a SharedArrayBuffer that every worker writes its images into; decoded pixels
 * come back (transferred, not copied) only for the decoded-image cache to keep.
 *
 * Every worker of the pool takes images of a batch from one shared counter, at a low scheduling priority
 * (TLEARN_BATCH_NICE steps below the main thread, default 19, the lowest: they use the cycles onnxruntime's
 * threads leave idle rather than slow those threads down, measured in BENCHMARKS.md); when the caller needs the
 * batch, the main thread makes the images no worker has started yet (PoolRun.finish), so a slow or starved worker
 * costs at most the images it is making.
 *
 * The pool is made on first use and kept for the process (workers keep their WebAssembly resampler and its
 * filter plans warm); idle workers do not keep the process alive. Its size: TLEARN_BATCH_WORKERS (0 = make
 * every input on the main thread, as before), else defaultBatchWorkers().
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { makeClaimed, type BatchItem, type BatchTask, type ItemResult } from './batch-task.js';
import type { WorkerHold, WorkerInit, WorkerJob } from './batch-worker.js';

/**
 * Workers for a machine with `cores` cores: onnxruntime's training step runs its intra-op threads on all of them
 * (the main thread included), so the pool gets a quarter of them, at least one: on 2 cores one worker measured
 * best (BENCHMARKS.md, issue 21).
 */
export function defaultBatchWorkers(cores = os.availableParallelism()): number {
  return Math.max(1, Math.floor(cores / 4));
}

export class BatchWorkersError extends Error {}

/** The pool size asked for by TLEARN_BATCH_WORKERS, else the default. */
export function batchWorkers(): number {
  const env = process.env.TLEARN_BATCH_WORKERS;
  if (env === undefined || env.trim() === '') return defaultBatchWorkers();
  const n = Number(env);
  if (!(Number.isInteger(n) && n >= 0 && n <= 64)) throw new BatchWorkersError(`TLEARN_BATCH_WORKERS must be a whole number of worker threads in 0..64 (0: none), got '${env}'`);
  return n;
}

/**
 * How many nice values below the main thread the pool's workers run: TLEARN_BATCH_NICE (0 = the same priority),
 * default 19 (the lowest priority there is, whatever the process's own).
 */
export function batchWorkerNice(): number {
  const env = process.env.TLEARN_BATCH_NICE;
  if (env === undefined || env.trim() === '') return 19;
  const n = Number(env);
  if (!(Number.isInteger(n) && n >= 0 && n <= 19)) throw new BatchWorkersError(`TLEARN_BATCH_NICE must be a whole number of nice steps in 0..19 below the main thread for the batch workers (0: the same priority, 19: the lowest), got '${env}'`);
  return n;
}

/**
 * A worker running batch-worker: the compiled .js beside this file, or, when this module runs from its
 * TypeScript source (tsx, vitest), the .ts source loaded through tsx's loader (a devDependency).
 */
function spawn(): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./batch-worker.js', here));
  const source = new URL('./batch-worker.ts', here).href;
  const code = `import { register } from ${JSON.stringify(tsxApi())}; register(); await import(${JSON.stringify(source)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`));
}

/** The ES module of tsx's loader API (`tsx/esm/api`), found through tsx's package.json. */
function tsxApi(): string {
  const require = createRequire(import.meta.url);
  const pkgFile = require.resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  return pathToFileURL(path.join(path.dirname(pkgFile), pkg.exports['./esm/api']!.import.default)).href;
}

interface Pending {
  resolve: (r: ItemResult[]) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

/**
 * One batch being made: the workers take its items from a shared counter; finish() makes the ones no worker has
 * taken on the calling thread, then waits for the answers of the workers that took some (a worker that took none
 * answers later, unread: one that is starved or busy does not hold the batch up).
 */
export class PoolRun {
  private readonly claims: Int32Array;

  constructor(
    private readonly job: Omit<WorkerJob, 'id' | 'worker'>,
    private readonly answers: Promise<ItemResult[]>[],
    private readonly onMine: (n: number) => void,
  ) {
    this.claims = new Int32Array(job.claims);
  }

  /** Every item's result (in any order), once each is made. */
  async finish(): Promise<ItemResult[]> {
    const { task, items, out, px, fd } = this.job;
    const own = await makeClaimed(task, items, this.claims, new Float32Array(out), px, fd);
    this.onMine(own.length);
    // every item is taken now: only the workers that took some have results to wait for
    const theirs = await Promise.all(this.answers.filter((_, w) => Atomics.load(this.claims, 1 + w) > 0));
    return [...own, ...theirs.flat()];
  }
}

export class BatchPool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  /** Images handed to this pool so far, and how many of them the calling thread made itself. */
  items = 0;
  madeByCaller = 0;

  constructor(
    readonly size: number,
    readonly nice = batchWorkerNice(),
  ) {}

  /**
   * Starts making `items` into `out` (px floats per image): every worker takes items from a shared counter until
   * none is left. The caller calls finish() on the result when it needs the batch.
   */
  start(task: BatchTask, items: BatchItem[], out: SharedArrayBuffer, px: number, fd: number | undefined): PoolRun {
    this.fill();
    this.items += items.length;
    const job = { task, items, claims: new SharedArrayBuffer(4 * (1 + this.slots.length)), out, px, fd };
    const answers = this.slots.map((slot, worker) => this.send(slot, { ...job, worker, id: this.nextId++ }));
    // the answers finish() does not wait for (workers that took nothing) may fail unread
    for (const a of answers) a.catch(() => undefined);
    return new PoolRun(job, answers, (n) => (this.madeByCaller += n));
  }

  /** Tests: keeps every worker busy until the returned function is called. */
  hold(): () => void {
    this.fill();
    const hold = new SharedArrayBuffer(4);
    for (const slot of this.slots) slot.worker.postMessage({ hold } satisfies WorkerHold);
    return () => {
      Atomics.store(new Int32Array(hold), 0, 1);
      Atomics.notify(new Int32Array(hold), 0);
    };
  }

  private send(slot: Slot, job: WorkerJob): Promise<ItemResult[]> {
    return new Promise((resolve, reject) => {
      slot.pending.set(job.id, { resolve, reject });
      if (slot.pending.size === 1) slot.worker.ref();
      slot.worker.postMessage(job);
    });
  }

  /** Starts workers up to the pool's size. */
  private fill(): void {
    while (this.slots.length < this.size) this.slots.push(this.spawnSlot());
  }

  private spawnSlot(): Slot {
    const worker = spawn();
    const slot: Slot = { worker, pending: new Map() };
    worker.unref();
    worker.postMessage({ nice: this.nice } satisfies WorkerInit);
    worker.on('message', (m: { id: number; results?: ItemResult[]; error?: string }) => {
      const p = slot.pending.get(m.id);
      if (!p) return;
      slot.pending.delete(m.id);
      if (!slot.pending.size) worker.unref();
      if (m.results) p.resolve(m.results);
      else p.reject(new Error(`a batch worker failed: ${m.error}`));
    });
    const fail = (e: Error) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      for (const p of slot.pending.values()) p.reject(e);
      slot.pending.clear();
    };
    worker.on('error', (e) => fail(new Error(`a batch worker thread failed: ${e.message}`)));
    worker.on('exit', (code) => fail(new Error(`a batch worker thread exited (code ${code})`)));
    return slot;
  }

  /** Stops the workers (the next run starts new ones). */
  async close(): Promise<void> {
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}

let shared: BatchPool | undefined;

/** The process's pool, or undefined when TLEARN_BATCH_WORKERS is 0. */
export function batchPool(): BatchPool | undefined {
  const n = batchWorkers();
  if (!n) return undefined;
  const nice = batchWorkerNice();
  if (shared?.size !== n || shared.nice !== nice) {
    void shared?.close();
    shared = new BatchPool(n, nice);
  }
  return shared;
}
