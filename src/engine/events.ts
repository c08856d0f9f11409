/**
 * One typed event stream for a training run, whatever the mode (transfer, fine-tune, scratch, compare's two
 * runs): modes emit, they never print. The command line's progress bars and logs, the bench, the studio and
 * library callers subscribe to the same events (fastai's callbacks, as one stream). Cancellation goes the other
 * way as one AbortSignal passed down with the events.
 *
 * Order within a run: 'run-start' (once the data is discovered and split), then stages ('stage' start/end) with
 * their progress ('extract' events during feature extraction, 'batch' events during network epochs, 'progress'
 * for other slow steps), an 'epoch' per epoch (head and network phases), 'checkpoint' whenever the resumable
 * state is written, 'calibration', 'evaluation' per split (val, then test), then exactly one of 'done', 'failed'
 * or 'cancelled', always the last event. 'log' carries the human-readable lines a mode used to print (a few,
 * such as discovery warnings or a resumed run's notice, may come before 'run-start'; a run that fails before
 * its data is read emits only 'failed').
 *
 * `label` says which run an event belongs to where there are several (compare: 'scratch' or 'transfer'; the
 * network trainer's events carry its label, 'scratch' or 'fine-tune').
 */
import type { CalibrationSummary } from './calibration.js';
import type { Logger } from '../util/log.js';
import { InterruptedError, stopSignalName } from '../util/interrupt.js';

/** One epoch of training (the Keras-style line): training loss and accuracy, validation loss and accuracy. */
export interface EpochLog {
  epoch: number;
  loss: number;
  acc: number;
  val_loss: number;
  val_acc: number;
  seconds: number;
  lr: number;
}

export type TrainingStage = 'data' | 'backbone' | 'features' | 'head' | 'network' | 'calibration' | 'evaluation' | 'report';

export type TrainingEvent =
  | { type: 'run-start'; mode: string; label?: string; outDir?: string; classes: string[]; counts: { train: number; val: number; test: number }; resumed: boolean }
  | { type: 'stage'; stage: TrainingStage; state: 'start' | 'end'; label?: string; seconds?: number }
  /**
   * Feature extraction progress: images done (cached ones included) out of total, computed ones per second,
   * seconds left; `name` is what is extracted ('features train+val', 'features test').
   */
  | { type: 'extract'; label?: string; name?: string; done: number; total: number; cached: number; rate: number; etaSeconds: number | null }
  /** Progress inside a network epoch (images of the training split done, unreadable ones included). */
  | { type: 'batch'; label?: string; epoch: number; epochs: number; done: number; total: number }
  /** Progress of another slow step (a download in bytes, BatchNormalization re-estimation, test-time augmentation). */
  | { type: 'progress'; label?: string; name: string; done: number; total: number; unit: string }
  /**
   * An epoch ended: the head (on cached features) or the network (on images). `resumed`: an epoch of a resumed
   * run's history, replayed from its checkpoint (it was trained before the stop).
   */
  | { type: 'epoch'; label?: string; phase: 'head' | 'network'; epochs: number; log: EpochLog; resumed?: boolean }
  /**
   * The resumable state was written: at the end of `epoch`, or, with `batch`, in the middle of epoch `epoch`
   * after `batch` of its `batches` batches (a stop).
   */
  | { type: 'checkpoint'; label?: string; epoch: number; path: string; batch?: number; batches?: number }
  /** `images`: the validation images the temperature was fitted on. */
  | { type: 'calibration'; label?: string; summary: CalibrationSummary; images?: number }
  | { type: 'evaluation'; label?: string; split: 'val' | 'test'; accuracy: number; loss: number; images: number }
  | { type: 'log'; label?: string; level: 'info' | 'warn'; message: string }
  | { type: 'done'; label?: string; outDir?: string; testAccuracy?: number; seconds: number }
  | { type: 'failed'; label?: string; error: string; outDir?: string; seconds?: number }
  /**
   * Stopped by the signal (or Ctrl-C) at a safe point; `message` says where and what remains, `resumeCommand`
   * continues it (`trainFromFolder({ resume: outDir })` from the library).
   */
  | { type: 'cancelled'; label?: string; outDir?: string; resumeCommand?: string; epoch?: number; message?: string; seconds?: number };

export type TrainingEventType = TrainingEvent['type'];
export type TrainingListener = (event: TrainingEvent) => void;

/**
 * What a mode holds to report and to be stopped: the listener, the run's signal and a label put on every event
 * that has none. Modes call `info`/`warn` for their lines and `emit` for typed events.
 */
export class RunEvents {
  constructor(
    readonly listener: TrainingListener = () => {},
    readonly signal?: AbortSignal,
    readonly label?: string,
    /** Aborts `signal` (the run's own controller), for Ctrl-C and requestStop(). */
    readonly stop?: (reason: 'SIGINT' | 'SIGTERM') => void,
  ) {}

  emit(e: TrainingEvent): void {
    this.listener(this.label !== undefined && e.label === undefined ? { ...e, label: this.label } : e);
  }

  info(message: string): void {
    this.emit({ type: 'log', level: 'info', message });
  }

  warn(message: string): void {
    this.emit({ type: 'log', level: 'warn', message });
  }

  /** The same stream with another label. */
  withLabel(label: string | undefined): RunEvents {
    return new RunEvents(this.listener, this.signal, label, this.stop);
  }

  /** Runs `fn` between a stage's start and end events. */
  async stage<T>(stage: TrainingStage, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    this.emit({ type: 'stage', stage, state: 'start' });
    const r = await fn();
    this.emit({ type: 'stage', stage, state: 'end', seconds: (performance.now() - t0) / 1000 });
    return r;
  }

  /** Throws InterruptedError with `message` when the signal has been aborted. */
  throwIfStopped(message: string): void {
    if (this.signal?.aborted) throw new InterruptedError(message, stopSignalName(this.signal));
  }

  /** A Logger whose lines and progress become events (for lower floors that take a Logger: downloads, runners). */
  logger(): Logger {
    return {
      info: (m) => this.info(m),
      warn: (m) => this.warn(m),
      progress: (name, total, unit = 'img', start = 0) => {
        let done = start;
        this.emit({ type: 'progress', name, done, total, unit });
        return {
          tick: (n = 1) => {
            done += n;
            this.emit({ type: 'progress', name, done, total, unit });
          },
          done: () => {
            // a step that ends early (or with an unknown total) still closes its bar
            if (!total || done < total) this.emit({ type: 'progress', name, done, total: done, unit });
          },
        };
      },
    };
  }
}
