/**
 * One training in a worker thread of the studio's process: the HTTP server stays responsive (the head's epochs on
 * tfjs-wasm would otherwise hold the event loop for seconds at a time), events go to the main thread as messages,
 * and an 'abort' message cancels the run at its next safe point. Killing the process kills the thread with it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { RunRequest } from '../train/types.js';
import { trainWithEvents } from './train-events.js';
import { labelIssuesForFolder } from '../train/label-issues.js';

export interface WorkerResult {
  type: 'result';
  outcome: 'done' | 'failed' | 'cancelled';
  error?: string;
  testAccuracy?: number;
  valAccuracy?: number;
}

const port = parentPort!;
const controller = new AbortController();
port.on('message', (m: { type: string }) => {
  if (m?.type === 'abort') controller.abort();
});
// The head's epochs run without giving the thread's event loop a turn, so the 'abort' message could wait until
// the end: the main thread also raises a shared flag, read at every event.
const flag: Int32Array | undefined = workerData.stop ? new Int32Array(workerData.stop) : undefined;
const stopRequested = () => {
  if (flag && Atomics.load(flag, 0) === 1 && !controller.signal.aborted) controller.abort();
};
if (workerData.task === 'label-issues') {
  // the label-issue finder (cross-validated heads on the backbone's features) for the Review page
  const { folder, options } = workerData;
  try {
    const r = await labelIssuesForFolder(folder, { ...options, signal: controller.signal });
    port.postMessage({ type: 'label-issues', result: r });
  } catch (e: any) {
    port.postMessage({ type: 'label-issues', error: e?.message ?? String(e) });
  }
} else {
  const r = await trainWithEvents(workerData.request as RunRequest, (event) => {
    port.postMessage({ type: 'event', event });
    stopRequested();
  }, controller.signal);
  const result: WorkerResult = { type: 'result', outcome: r.outcome, error: r.error, testAccuracy: r.result?.metrics.test.accuracy, valAccuracy: r.result?.metrics.val.accuracy };
  port.postMessage(result);
}
port.close();
