/**
 * Turning training events back into text: `formatTrainingEvent` gives an event's line, and
 * `renderTrainingEvents` draws a run on a Logger the way the command line shows it (progress bars for
 * extraction, epochs and other slow steps; the Keras-style epoch lines; checkpoints; calibration; the modes' lines).
 */
import type { Logger, Progress } from '../util/log.js';
import type { TrainingEvent, TrainingListener } from './events.js';

const f4 = (x: number) => x.toFixed(4);

function epochText(e: Extract<TrainingEvent, { type: 'epoch' }>): string {
  const h = e.log;
  const base = `Epoch ${h.epoch}/${e.epochs} - ${h.seconds.toFixed(1)}s - loss: ${f4(h.loss)} - acc: ${f4(h.acc)}`;
  if (e.phase === 'head') return base + (Number.isNaN(h.val_loss) ? '' : ` - val_loss: ${f4(h.val_loss)} - val_acc: ${f4(h.val_acc)}`);
  return `${e.label ? `[${e.label}] ` : ''}${base} - val_loss: ${f4(h.val_loss)} - val_acc: ${f4(h.val_acc)}`;
}

function calibrationText(e: Extract<TrainingEvent, { type: 'calibration' }>): string {
  const s = e.summary;
  if (s.method !== 'temperature') return `calibration: none (${s.note ?? 'not fitted'})`;
  return (
    `calibration: temperature ${s.temperature.toFixed(3)} fitted on ${e.images ?? '?'} validation images (val loss ${f4(s.val.before.loss)} → ${f4(s.val.after.loss)}, ECE ${f4(s.val.before.ece)} → ${f4(s.val.after.ece)}), folded into ${s.layer}` +
    (s.note ? `; ${s.note}` : '')
  );
}

/** The name of a progress event's bar. */
function barName(e: Extract<TrainingEvent, { type: 'extract' | 'batch' | 'progress' }>): string {
  if (e.type === 'extract') return e.name ?? 'features';
  if (e.type === 'batch') return `${e.label ?? 'train'} epoch ${e.epoch}/${e.epochs}`;
  return e.name;
}

/** One line of text for an event (progress events as a plain 'name: done/total' line). */
export function formatTrainingEvent(e: TrainingEvent): string {
  const who = e.label ? `[${e.label}] ` : '';
  switch (e.type) {
    case 'run-start':
      return `${who}${e.resumed ? 'resuming' : 'starting'} a ${e.mode} run: ${e.classes.length} classes, ${e.counts.train} / ${e.counts.val} / ${e.counts.test} images (train / val / test)${e.outDir ? ` in ${e.outDir}` : ''}`;
    case 'stage':
      return `${who}${e.stage}: ${e.state === 'start' ? 'started' : `done${e.seconds !== undefined ? ` in ${e.seconds.toFixed(1)}s` : ''}`}`;
    case 'extract':
    case 'batch':
    case 'progress':
      return `${e.type === 'batch' ? '' : who}${barName(e)}: ${e.done}/${e.total}${e.total ? ` (${((100 * e.done) / e.total).toFixed(0)}%)` : ''}`;
    case 'epoch':
      return epochText(e);
    case 'checkpoint':
      return `${e.batch !== undefined ? `${who}checkpoint: epoch ${e.epoch}, batch ${e.batch}/${e.batches}` : `  checkpoint: epoch ${e.epoch}`} (${e.path})`;
    case 'calibration':
      return calibrationText(e);
    case 'evaluation':
      return `${who}${e.split}: accuracy ${f4(e.accuracy)}, loss ${f4(e.loss)} (${e.images} images)`;
    case 'log':
      return e.level === 'warn' ? `warning: ${e.message}` : e.message;
    case 'done':
      return `${who}done in ${e.seconds.toFixed(1)}s${e.testAccuracy !== undefined ? `: test accuracy ${f4(e.testAccuracy)}` : ''}${e.outDir ? ` (${e.outDir})` : ''}`;
    case 'failed':
      return `${who}failed: ${e.error}`;
    case 'cancelled':
      return `${who}${e.message ?? 'stopped'}${e.resumeCommand ? `; to continue: ${e.resumeCommand}` : ''}`;
  }
}

export interface RenderOptions {
  /**
   * Also print what the command line leaves to its own output: run-start, stages, evaluations, a stop's
   * checkpoint, and the final done/failed/cancelled line (default false).
   */
  verbose?: boolean;
}

/** A listener that draws the events on `logger` as the command line does: one progress bar at a time, lines as they come. */
export function renderTrainingEvents(logger: Logger, opts: RenderOptions = {}): TrainingListener {
  let bar: { name: string; progress: Progress; done: number } | undefined;
  const close = () => {
    bar?.progress.done();
    bar = undefined;
  };
  return (e) => {
    if (e.type === 'extract' || e.type === 'batch' || e.type === 'progress') {
      const name = barName(e);
      if (bar?.name !== name) {
        close();
        bar = { name, progress: logger.progress(name, e.total, e.type === 'progress' ? e.unit : 'img'), done: 0 };
      }
      // an epoch's bar shows from its start (as before the events); the others from their first step
      if (e.done > bar.done || (e.type === 'batch' && bar.done === 0 && e.done === 0)) bar.progress.tick(e.done - bar.done);
      bar.done = e.done;
      // an unknown total (0) ends with the step's last event, which gives the total
      if ((e.type !== 'progress' || e.total > 0 || e.done > 0) && e.done >= e.total) close();
      return;
    }
    if (e.type === 'log') {
      if (e.level === 'warn') logger.warn(e.message);
      else logger.info(e.message);
      return;
    }
    close();
    const quiet = e.type === 'run-start' || e.type === 'stage' || e.type === 'evaluation' || e.type === 'done' || e.type === 'failed' || e.type === 'cancelled' || (e.type === 'checkpoint' && e.batch !== undefined);
    if (quiet && !opts.verbose) return;
    logger.info(formatTrainingEvent(e));
  };
}

/** The listener a lower-level call reports to: its own, else one drawing on its logger, else none. */
export function eventListener(o: { onEvent?: TrainingListener; logger?: Logger }): TrainingListener {
  if (o.onEvent) return o.onEvent;
  if (o.logger) return renderTrainingEvents(o.logger);
  return () => {};
}
