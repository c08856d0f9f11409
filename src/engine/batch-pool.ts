/**
 * A small pool of worker threads (node:worker_threads) that make the inputs of training and evaluation batches
 * (engine/batch-task.ts) while onnxruntime, which runs a session synchronously on the main thread, trains on the
 * current batch. The batch tensor is a SharedArrayBuffer that every worker writes its images into; decoded pixels
 * come back (transferred, not copied) only for the decoded-image cache to keep.
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
import type { BatchItem, BatchTask, ItemResult } from './batch-task.js';
import type { WorkerJob } from './batch-worker.js';

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
  items: number;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  /** Items sent and not yet answered. */
  load: number;
}

export class BatchPool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  /** Images made by this pool's workers so far. */
  items = 0;

  constructor(readonly size: number) {}

  /** Makes `items` into `out` (px floats per image), split among the workers; results in any order. */
  async run(task: BatchTask, items: BatchItem[], out: SharedArrayBuffer, px: number, fd: number | undefined): Promise<ItemResult[]> {
    while (this.slots.length < this.size) this.slots.push(this.start());
    this.items += items.length;
    // small chunks, each to the least loaded worker, so that a slow image does not hold up the others
    const chunk = Math.max(1, Math.ceil(items.length / (2 * this.size)));
    const parts: Promise<ItemResult[]>[] = [];
    for (let s = 0; s < items.length; s += chunk) {
      const slot = this.slots.reduce((a, b) => (b.load < a.load ? b : a));
      parts.push(this.send(slot, { id: this.nextId++, task, items: items.slice(s, s + chunk), out, px, fd }));
    }
    return (await Promise.all(parts)).flat();
  }

  private send(slot: Slot, job: WorkerJob): Promise<ItemResult[]> {
    return new Promise((resolve, reject) => {
      slot.pending.set(job.id, { resolve, reject, items: job.items.length });
      slot.load += job.items.length;
      if (slot.pending.size === 1) slot.worker.ref();
      slot.worker.postMessage(job);
    });
  }

  private start(): Slot {
    const worker = spawn();
    const slot: Slot = { worker, pending: new Map(), load: 0 };
    worker.unref();
    worker.on('message', (m: { id: number; results?: ItemResult[]; error?: string }) => {
      const p = slot.pending.get(m.id);
      if (!p) return;
      slot.pending.delete(m.id);
      slot.load -= p.items;
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
  if (shared?.size !== n) {
    void shared?.close();
    shared = new BatchPool(n);
  }
  return shared;
}
