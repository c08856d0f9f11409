/**
 * Runs trainFromFolder with the studio's event listener and AbortSignal and answers how it ended, never throwing:
 * the run's own last event ('done', 'failed' or 'cancelled') has already said the same to the listener.
 */
import type { TrainingListener } from '../engine/events.js';
import { trainFromFolder, type RunRequest, type TrainRunResult } from '../train/run.js';
import { InterruptedError } from '../util/interrupt.js';

export interface EventedResult {
  result?: TrainRunResult;
  outcome: 'done' | 'failed' | 'cancelled';
  error?: string;
}

export async function trainWithEvents(request: RunRequest, emit: TrainingListener, signal?: AbortSignal): Promise<EventedResult> {
  let last: string | undefined;
  const onEvent: TrainingListener = (e) => {
    last = e.type;
    emit(e);
  };
  try {
    const result = await trainFromFolder({ ...request, onEvent, signal });
    return { result, outcome: 'done' };
  } catch (e: any) {
    const cancelled = e instanceof InterruptedError || signal?.aborted;
    const error = e?.message ?? String(e);
    // a run refused before it started (bad options) emits nothing: say it here
    if (last !== 'failed' && last !== 'cancelled') emit(cancelled ? { type: 'cancelled', message: error } : { type: 'failed', error });
    return cancelled ? { outcome: 'cancelled' } : { outcome: 'failed', error };
  }
}
