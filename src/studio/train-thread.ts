/**
 * Runs trainWithEvents in a worker thread (train-worker.ts) and gives back the same answer as calling it here:
 * events through `emit`, cancellation through `signal`, the outcome when it ends (never throws). From the
 * TypeScript sources (tests), the worker is loaded through tsx.
 */
import { Worker } from 'node:worker_threads';
import type { TrainingListener } from '../engine/events.js';
import type { RunRequest } from '../train/types.js';
import type { WorkerResult } from './train-worker.js';
import type { FolderLabelIssues, LabelIssuesForFolderOptions } from '../train/label-issues.js';

export interface ThreadOutcome {
  outcome: 'done' | 'failed' | 'cancelled';
  error?: string;
  testAccuracy?: number;
  valAccuracy?: number;
}

function startWorker(data: Record<string, unknown>): Worker {
  const fromSource = import.meta.url.endsWith('.ts');
  const file = new URL(fromSource ? './train-worker.ts' : './train-worker.js', import.meta.url);
  return fromSource
    ? new Worker(`import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(file.href)}); })`, { eval: true, workerData: data })
    : new Worker(file, { workerData: data });
}

/** labelIssuesForFolder in a worker thread; rejects with its one-line message. */
export function labelIssuesInThread(folder: string, options: Omit<LabelIssuesForFolderOptions, 'signal' | 'logger' | 'onProgress'>): Promise<FolderLabelIssues> {
  return new Promise((resolve, reject) => {
    const worker = startWorker({ task: 'label-issues', folder, options });
    let answered = false;
    worker.on('message', (m: any) => {
      if (m?.type !== 'label-issues') return;
      answered = true;
      if (m.error) reject(new Error(m.error));
      else resolve(m.result);
    });
    worker.on('error', (e) => !answered && reject(e));
    worker.on('exit', () => !answered && reject(new Error('the label-issue finder stopped unexpectedly')));
  });
}

export function trainInThread(request: RunRequest, emit: TrainingListener, signal: AbortSignal): Promise<ThreadOutcome> {
  const { logger: _l, ...plain } = request as RunRequest & { logger?: unknown };
  return new Promise((resolve) => {
    let result: WorkerResult | undefined;
    let worker: Worker;
    const stop = new SharedArrayBuffer(4);
    try {
      worker = startWorker({ request: plain, stop });
    } catch (e: any) {
      resolve({ outcome: 'failed', error: `the training could not start: ${e?.message ?? e}` });
      return;
    }
    const onAbort = () => {
      Atomics.store(new Int32Array(stop), 0, 1);
      worker.postMessage({ type: 'abort' });
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: any) => {
      if (m?.type === 'event') emit(m.event);
      else if (m?.type === 'result') result = m;
    });
    let failure: string | undefined;
    worker.on('error', (e) => {
      failure = e?.message ?? String(e);
    });
    worker.on('exit', () => {
      signal.removeEventListener('abort', onAbort);
      if (result) resolve(result);
      else {
        const error = `the training stopped unexpectedly${failure ? `: ${failure}` : ''}`;
        emit({ type: 'failed', error });
        resolve({ outcome: 'failed', error });
      }
    });
  });
}
