/**
 * The calibration step of a run, called once the model is final (after any mode, before TTA and before
 * anything that reads probabilities, such as a threshold chosen on validation): a temperature fitted on the
 * validation predictions, folded into the model's final Dense layer, and the reported probabilities rescaled
 * the same way, so that metrics, report, predict, serve and the exports all see calibrated probabilities.
 */
import { applyTemperature, CalibrationError, fitTemperature, foldTemperature, TEMPERATURE_RANGE } from '../engine/calibration.js';
import { computeMetrics } from '../evaluate/metrics.js';
import type { Logger } from '../util/log.js';
import { RunEvents } from '../engine/events.js';
import { renderTrainingEvents } from '../engine/event-render.js';
import type { CalibrationPoint, CalibrationSummary, ModelOutcome, SplitPredictions } from './types.js';

/** Fewer validation images than this and the temperature is left at 1 (a fit on a handful of images says little). */
export const MIN_CALIBRATION_IMAGES = 20;

function point(p: SplitPredictions, classes: number): CalibrationPoint {
  if (!p.labels.length) return { loss: NaN, ece: NaN };
  const m = computeMetrics(p.probs, p.labels, Array.from({ length: classes }, (_, i) => String(i)));
  return { loss: m.loss, ece: m.ece };
}

function classesOf(o: ModelOutcome): number {
  const n = o.val.labels.length || o.test.labels.length;
  return n ? (o.val.labels.length ? o.val.probs.length / o.val.labels.length : o.test.probs.length / o.test.labels.length) : 0;
}

/**
 * Fits T on `o.val`, folds 1/T into the model and rescales `o.val` and `o.test`. With `enabled: false`, too few
 * validation images, or a model without a final Dense + softmax, the model is left as it is and the summary
 * says why. Reports the calibration stage and a 'calibration' event to `out` (a run's events, or a Logger the
 * event is drawn on as a line).
 */
export function calibrateOutcome<T extends ModelOutcome>(o: T, out: RunEvents | Logger, enabled = true): T {
  const ev = out instanceof RunEvents ? out : new RunEvents(renderTrainingEvents(out));
  const t0 = performance.now();
  ev.emit({ type: 'stage', stage: 'calibration', state: 'start' });
  const r = calibrate(o, enabled);
  ev.emit({ type: 'calibration', summary: r.calibration!, images: o.val.labels.length });
  ev.emit({ type: 'stage', stage: 'calibration', state: 'end', seconds: (performance.now() - t0) / 1000 });
  return r;
}

function calibrate<T extends ModelOutcome>(o: T, enabled: boolean): T {
  const K = classesOf(o);
  const before = { val: point(o.val, K), test: point(o.test, K) };
  const unchanged = (note: string): T => {
    const summary: CalibrationSummary = { method: 'none', temperature: 1, layer: null, fittedOn: 'val', note, val: { before: before.val, after: before.val }, test: { before: before.test, after: before.test } };
    return { ...o, calibration: summary, describe: [...o.describe, ['calibration', `none (${note})`]] };
  };
  if (!enabled) return unchanged('turned off with --no-calibrate');
  if (o.val.labels.length < MIN_CALIBRATION_IMAGES) return unchanged(`only ${o.val.labels.length} validation images, at least ${MIN_CALIBRATION_IMAGES} are needed to fit a temperature`);
  const fit = fitTemperature(o.val.probs, o.val.labels, K);
  let folded: ReturnType<typeof foldTemperature>;
  try {
    folded = foldTemperature(o.model, fit.temperature);
  } catch (e) {
    if (e instanceof CalibrationError) return unchanged(e.message);
    throw e;
  }
  const val = { ...o.val, probs: applyTemperature(o.val.probs, K, fit.temperature) };
  const test = { ...o.test, probs: applyTemperature(o.test.probs, K, fit.temperature) };
  const after = { val: point(val, K), test: point(test, K) };
  const summary: CalibrationSummary = {
    method: 'temperature',
    temperature: fit.temperature,
    layer: folded.layer,
    fittedOn: 'val',
    ...(fit.atBound ? { note: `the temperature reached the end of its search range [${TEMPERATURE_RANGE.join(', ')}]` } : {}),
    val: { before: before.val, after: after.val },
    test: { before: before.test, after: after.test },
  };
  return {
    ...o,
    model: folded.artifacts,
    val,
    test,
    calibration: summary,
    describe: [...o.describe, ['calibration', `temperature ${fit.temperature.toFixed(3)} (fitted on the validation split, folded into ${folded.layer}); test ECE ${before.test.ece.toFixed(4)} → ${after.test.ece.toFixed(4)}`]],
  };
}
