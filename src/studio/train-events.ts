/**
 * Runs trainFromFolder with a typed event listener and an AbortSignal.
 *
 * BRIDGE until branch `events` (trainFromFolder's own `onEvent` and `signal` options) is merged: the events are
 * made from what the run reports to its Logger (progress of feature extraction, one line per epoch), and a cancel
 * asks the network trainer to stop at its next safe point (a checkpoint is written) or, in the head's training and
 * feature extraction, stops at the next progress report. When `events` is merged this file becomes one call.
 */
import type { TrainingEvent, TrainingListener } from '../engine/events.js';
import type { EpochLog } from '../engine/fit.js';
import { trainFromFolder, type RunRequest, type TrainRunResult } from '../train/run.js';
import { InterruptedError, requestStop } from '../util/interrupt.js';
import type { Logger, Progress } from '../util/log.js';

const EPOCH_LINE = /^(?:\[([\w -]+)\] )?Epoch (\d+)\/(\d+) - ([\d.]+)s - loss: ([-\d.naNinfIy]+) - acc: ([-\d.naN]+)(?: - val_loss: ([-\d.naNinfIy]+) - val_acc: ([-\d.naN]+))?/;

class Cancelled extends InterruptedError {}

/** A Logger that turns the run's reports into events, and stops the run when `signal` is aborted. */
function eventLogger(emit: TrainingListener, signal: AbortSignal | undefined): Logger {
  const check = () => {
    if (signal?.aborted) throw new Cancelled('cancelled');
  };
  let phase: 'head' | 'network' = 'head';
  return {
    info(message) {
      const m = EPOCH_LINE.exec(message);
      if (m) {
        if (m[1] === 'fine-tune' || m[1] === 'scratch') phase = 'network';
        const log: EpochLog = { epoch: Number(m[2]), loss: Number(m[5]), acc: Number(m[6]), val_loss: m[7] === undefined ? NaN : Number(m[7]), val_acc: m[8] === undefined ? NaN : Number(m[8]), seconds: Number(m[4]), lr: NaN };
        emit({ type: 'epoch', phase: m[1] ? 'network' : phase, epochs: Number(m[3]), log });
        // the network trainer stops itself at a safe point (requestStop), writing a checkpoint first
        if (!m[1]) check();
      } else emit({ type: 'log', level: 'info', message });
    },
    warn(message) {
      emit({ type: 'log', level: 'warn', message });
    },
    progress(label: string, total: number): Progress {
      const start = performance.now();
      let done = 0;
      let last = 0;
      const features = label.startsWith('features');
      const epoch = /epoch (\d+)\/(\d+)/.exec(label);
      const report = (force: boolean) => {
        const now = performance.now();
        if (!force && now - last < 250) return;
        last = now;
        const seconds = (now - start) / 1000;
        const rate = seconds > 0 ? done / seconds : 0;
        if (features) emit({ type: 'extract', label, done, total, cached: 0, rate, etaSeconds: rate > 0 ? (total - done) / rate : null });
        else if (epoch) emit({ type: 'batch', label, epoch: Number(epoch[1]), epochs: Number(epoch[2]), done, total });
      };
      if (features) emit({ type: 'stage', stage: 'features', state: 'start', label });
      report(true);
      return {
        tick(n = 1) {
          done += n;
          report(false);
          if (features) check();
        },
        done() {
          report(true);
          if (features) emit({ type: 'stage', stage: 'features', state: 'end', label, seconds: (performance.now() - start) / 1000 });
        },
      };
    },
  };
}

export interface EventedResult {
  result?: TrainRunResult;
  /** How the run ended; its last event says the same. */
  outcome: 'done' | 'failed' | 'cancelled';
  error?: string;
}

/** Trains, emitting events; never throws (the outcome and the last event say how it ended). */
export async function trainWithEvents(request: RunRequest, emit: TrainingListener, signal?: AbortSignal): Promise<EventedResult> {
  const t0 = performance.now();
  const onAbort = () => requestStop('SIGINT');
  signal?.addEventListener('abort', onAbort, { once: true });
  emit({ type: 'run-start', mode: request.mode ?? 'transfer', outDir: request.out ?? request.resume, classes: [], counts: { train: 0, val: 0, test: 0 }, resumed: Boolean(request.resume) });
  try {
    const result = await trainFromFolder({ ...request, logger: eventLogger(emit, signal) });
    emit({ type: 'evaluation', split: 'val', accuracy: result.metrics.val.accuracy, loss: result.metrics.val.loss, images: result.metrics.val.n });
    emit({ type: 'evaluation', split: 'test', accuracy: result.metrics.test.accuracy, loss: result.metrics.test.loss, images: result.metrics.test.n });
    const done: TrainingEvent = { type: 'done', outDir: result.outDir, testAccuracy: result.metrics.test.accuracy, seconds: (performance.now() - t0) / 1000 };
    emit(done);
    return { result, outcome: 'done' };
  } catch (e: any) {
    if (signal?.aborted || e instanceof Cancelled || e instanceof InterruptedError) {
      emit({ type: 'cancelled', outDir: request.out ?? request.resume, resumeCommand: e?.resumeCommand });
      return { outcome: 'cancelled' };
    }
    const error = e?.message ?? String(e);
    emit({ type: 'failed', error });
    return { outcome: 'failed', error };
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
