/**
 * A worker thread of the batch pool (engine/batch-pool.ts): makes the inputs of the images it claims from a
 * batch (engine/batch-task.ts) into the shared batch tensor and answers with what failed and what decoded.
 *
 * It runs at a low scheduling priority (batchWorkerNice()), so that it takes only the cycles onnxruntime's
 * threads leave idle instead of slowing them down; the main thread makes whatever no worker has started by the
 * time it needs the batch (batch-pool.ts), so a starved worker never stalls training.
 */
import { parentPort } from 'node:worker_threads';
import { makeClaimed, type BatchItem, type BatchTask } from './batch-task.js';
import { lowerThisThreadsPriority } from './thread-priority.js';

export interface WorkerJob {
  id: number;
  task: BatchTask;
  items: BatchItem[];
  /** The items taken (Int32 at 0) and taken by each worker (at 1 + its place), shared by the threads making this batch. */
  claims: SharedArrayBuffer;
  /** This worker's place in the pool. */
  worker: number;
  /** The batch tensor (float32), shared with the main thread. */
  out: SharedArrayBuffer;
  px: number;
  /** The decoded-image cache file's descriptor, when there is one. */
  fd?: number;
}

/** Holds the worker until the Int32 at 0 of `hold` is notified (tests: a worker that is busy elsewhere). */
export interface WorkerHold {
  hold: SharedArrayBuffer;
}

export interface WorkerInit {
  /** Nice steps below the process's priority to run at (0: the same). */
  nice: number;
}

const port = parentPort;
if (port) {
  port.on('message', (job: WorkerJob | WorkerHold | WorkerInit) => {
    if ('nice' in job) {
      lowerThisThreadsPriority(job.nice);
      return;
    }
    if ('hold' in job) {
      Atomics.wait(new Int32Array(job.hold), 0, 0);
      return;
    }
    makeClaimed(job.task, job.items, new Int32Array(job.claims), new Float32Array(job.out), job.px, job.fd, 1 + job.worker).then(
      (results) => port.postMessage({ id: job.id, results }, results.flatMap((r) => (r.decoded ? [r.decoded.data.buffer as ArrayBuffer] : []))),
      (e: unknown) => port.postMessage({ id: job.id, error: String((e as Error)?.stack ?? e) }),
    );
  });
}
