/**
 * One typed event stream for a training run, whatever the mode (transfer, fine-tune, scratch, compare's two
 * runs): modes emit, they never print. The command line's progress bars and logs, the bench, the studio and
 * library callers subscribe to the same events (fastai's callbacks, as one stream). Cancellation goes the other
 * way as one AbortSignal passed down with the events.
 *
 * Order within a run: 'run-start', then stages ('stage' start/end) with their progress ('extract' events during
 * feature extraction, 'batch' events during network epochs), an 'epoch' per epoch (head and network phases),
 * 'checkpoint' whenever the resumable state is written, 'calibration', 'evaluation' per split, then exactly one of
 * 'done', 'failed' or 'cancelled'. 'log' carries the human-readable lines a mode used to print.
 */
import type { EpochLog } from './fit.js';
import type { CalibrationSummary } from './calibration.js';

export type TrainingStage = 'data' | 'backbone' | 'features' | 'head' | 'network' | 'calibration' | 'evaluation' | 'report';

export type TrainingEvent =
  | { type: 'run-start'; mode: string; label?: string; outDir?: string; classes: string[]; counts: { train: number; val: number; test: number }; resumed: boolean }
  | { type: 'stage'; stage: TrainingStage; state: 'start' | 'end'; label?: string; seconds?: number }
  /** Feature extraction progress: images done (cached ones included) out of total, computed ones per second, seconds left. */
  | { type: 'extract'; label?: string; done: number; total: number; cached: number; rate: number; etaSeconds: number | null }
  /** Progress inside a network epoch (images of the training split done). */
  | { type: 'batch'; label?: string; epoch: number; epochs: number; done: number; total: number }
  /** An epoch ended: the head (on cached features) or the network (on images). */
  | { type: 'epoch'; label?: string; phase: 'head' | 'network'; epochs: number; log: EpochLog }
  | { type: 'checkpoint'; label?: string; epoch: number; path: string }
  | { type: 'calibration'; label?: string; summary: CalibrationSummary }
  | { type: 'evaluation'; label?: string; split: 'val' | 'test'; accuracy: number; loss: number; images: number }
  | { type: 'log'; label?: string; level: 'info' | 'warn'; message: string }
  | { type: 'done'; label?: string; outDir?: string; testAccuracy?: number; seconds: number }
  | { type: 'failed'; label?: string; error: string }
  /** Stopped by the signal (or Ctrl-C) at a safe point; `resumeCommand` continues it when the run is resumable. */
  | { type: 'cancelled'; label?: string; outDir?: string; resumeCommand?: string; epoch?: number };

export type TrainingEventType = TrainingEvent['type'];
export type TrainingListener = (event: TrainingEvent) => void;
