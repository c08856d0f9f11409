/**
 * A worker thread of the batch pool (engine/batch-pool.ts): makes the inputs of the images it is given
 * (engine/batch-task.ts) into the shared batch tensor and answers with what failed and what decoded.
 */
import { parentPort } from 'node:worker_threads';
import { makeItems, type BatchItem, type BatchTask } from './batch-task.js';

export interface WorkerJob {
  id: number;
  task: BatchTask;
  items: BatchItem[];
  /** The batch tensor (float32), shared with the main thread. */
  out: SharedArrayBuffer;
  px: number;
  /** The decoded-image cache file's descriptor, when there is one. */
  fd?: number;
}

const port = parentPort;
if (port) {
  port.on('message', (job: WorkerJob) => {
    makeItems(job.task, job.items, new Float32Array(job.out), job.px, job.fd).then(
      (results) => port.postMessage({ id: job.id, results }, results.flatMap((r) => (r.decoded ? [r.decoded.data.buffer as ArrayBuffer] : []))),
      (e: unknown) => port.postMessage({ id: job.id, error: String((e as Error)?.stack ?? e) }),
    );
  });
}
