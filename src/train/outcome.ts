/**
 * How a run folder is written from what a training mode produced (a `ModelOutcome`, see types.ts): model/ + metadata.json, metrics.json, history.json, test-predictions.csv and
 * report.html with its plots.
 */
import path from 'node:path';
import { writeLayersModel } from '../backbones/layers-model.js';
import { classifierOnnx } from './classifier-onnx.js';
import { makeMetadata } from '../classifier/metadata.js';
import { chooseThreshold, describeRejection, rejectionStats, type RejectionStats } from '../classifier/threshold.js';
import type { ImageFolder, LabelledImage, SkippedFile } from '../data/discover.js';
import type { DatasetSplit } from '../data/split.js';
import { summarizeDataset, type DatasetSummary } from '../data/summary.js';
import { computeMetrics, type Metrics } from '../evaluate/metrics.js';
import { predictionsCsv, topLossGallery, writeReport, type LabelIssuesSection, type ReportFiles } from '../report/html.js';
import { writeFileAtomic } from '../util/fs.js';
import { Rng } from '../util/rng.js';
import { VERSION } from '../version.js';
import type { EpochLog } from '../engine/fit.js';
import type { ModelOutcome, TrainMode } from './types.js';

export interface RunMetrics {
  tlearnVersion: string;
  createdAt: string;
  outDir: string;
  mode: TrainMode;
  dataset: DatasetSummary & { classNames: string[]; skippedFiles: SkippedFile[]; splitMode: DatasetSplit['mode']; seed: number; fractions: number[] };
  val: Metrics;
  test: Metrics;
  timings: Record<string, number>;
  /** Mode-specific details: backbone, head, training, features (transfer), model (scratch), finetune. */
  [detail: string]: any;
}

export interface RunFolder {
  outDir: string;
  metrics: RunMetrics;
  history: EpochLog[];
  report: ReportFiles;
}

export function classCounts(ds: ImageFolder): number[] {
  const counts = ds.classes.map(() => 0);
  for (const im of ds.images) counts[im.label]!++;
  return counts;
}

/** 16 seeded random images with their labels (the notebook's sample grid). */
export function sampleImages(images: LabelledImage[], classes: string[], seed: number, n = 16): Array<{ path: string; label: string }> {
  return new Rng(seed + 1)
    .shuffle([...images])
    .slice(0, n)
    .map((i) => ({ path: i.path, label: classes[i.label]! }));
}

export function datasetRows(m: RunMetrics): Array<[string, string]> {
  return [
    ['data', m.dataset.root],
    ['classes / images', `${m.dataset.classes} / ${m.dataset.images}${m.dataset.excluded.length ? ` (excluded: ${m.dataset.excluded.join(', ')})` : ''}`],
    ['split (train / val / test)', `${m.dataset.split!.train} / ${m.dataset.split!.val} / ${m.dataset.split!.test} — ${m.dataset.split!.note}`],
    ['skipped files', String(m.dataset.skippedFiles.length)],
  ];
}

/** The report's rows for the open-set threshold: the rule, and what it rejects on the test split. */
export function openSetRows(s: { rule: string; test: RejectionStats }): Array<[string, string]> {
  return [
    ['open-set threshold', `${s.test.threshold.toFixed(4)} (${s.rule}); below it, predict and serve answer "unknown"`],
    ['threshold on the test split', describeRejection(s.test)],
  ];
}

interface ExcludedRow {
  file: string;
  split: string;
  given?: string;
  suggested?: string;
  score?: number;
  kind?: string;
}
interface ExcludedJson {
  summary: string;
  excluded: ExcludedRow[];
  keptInTest: ExcludedRow[];
}

/** The report's "Possible label issues" from metrics.json's excludedFiles (train --exclude-files, --drop-label-issues). */
function labelIssuesSection(root: string, x: ExcludedJson | undefined): LabelIssuesSection | undefined {
  if (!x) return undefined;
  const item = (e: ExcludedRow, excluded: boolean) => ({ ...e, path: path.join(root, e.file), excluded });
  return { summary: x.summary, items: [...x.excluded.map((e) => item(e, true)), ...x.keptInTest.map((e) => item(e, false))] };
}

/** Writes a run folder for one trained model. */
export async function writeRunFolder(outDir: string, ds: ImageFolder, split: DatasetSplit, o: ModelOutcome, timings: Record<string, number>, title: string): Promise<RunFolder> {
  const tSave = performance.now();
  const modelDir = path.join(outDir, 'model');
  const onnx = classifierOnnx(o);
  if (onnx) await writeFileAtomic(path.join(modelDir, 'model.onnx'), onnx);
  else await writeLayersModel(modelDir, o.model);
  // The open-set threshold is chosen on what the shipped model outputs on the validation split: `o` is final
  // here (calibrated by train/calibrate.ts before this), so the threshold applies to calibrated probabilities.
  const threshold = chooseThreshold(o.val.probs, o.val.labels);
  const openSet = { threshold: threshold.value, rule: threshold.rule, val: threshold.val, test: rejectionStats(o.test.probs, o.test.labels, threshold.value) };
  const cal = o.calibration;
  const metadata = makeMetadata({
    labels: ds.classes,
    inputSize: o.inputSize,
    preprocessing: o.preprocessing,
    resize: o.resize,
    kernel: o.kernel,
    backbone: o.backbone,
    head: o.head,
    threshold,
    calibration: cal?.method === 'temperature' ? { method: 'temperature', temperature: cal.temperature, layer: cal.layer!, fittedOn: 'validation split', folded: true } : undefined,
  });
  await writeFileAtomic(path.join(modelDir, 'metadata.json'), JSON.stringify(metadata, null, 2));
  const val = computeMetrics(o.val.probs, o.val.labels, ds.classes);
  const test = computeMetrics(o.test.probs, o.test.labels, ds.classes);
  const allTimings: Record<string, number> = { ...timings, ...o.timings, save: (performance.now() - tSave) / 1000 };
  allTimings.total = Object.entries(allTimings).reduce((a, [k, v]) => (k === 'total' ? a : a + v), 0);
  const summary = summarizeDataset(ds, split, o.failed);
  const failedPaths = new Set(o.failed.map((f) => f.path));
  const metrics: RunMetrics = {
    tlearnVersion: VERSION,
    createdAt: new Date().toISOString(),
    outDir,
    mode: o.mode,
    dataset: {
      ...summary,
      split: { train: split.train.filter((i) => !failedPaths.has(i.path)).length, val: o.val.labels.length, test: o.test.labels.length, note: split.note },
      classNames: ds.classes,
      skippedFiles: [...ds.skipped, ...o.failed],
      splitMode: split.mode,
      seed: split.seed,
      fractions: split.fractions,
    },
    ...o.details,
    ...(cal ? { calibration: cal } : {}),
    openSet,
    val,
    test,
    timings: allTimings,
  };
  await writeFileAtomic(path.join(outDir, 'metrics.json'), JSON.stringify(metrics, null, 2));
  await writeFileAtomic(path.join(outDir, 'history.json'), JSON.stringify(o.history, null, 2));
  await writeFileAtomic(path.join(outDir, 'test-predictions.csv'), predictionsCsv(o.test.probs, o.test.labels, o.test.paths, ds.classes));
  const report = await writeReport(outDir, {
    title,
    kind: 'train',
    createdAt: metrics.createdAt,
    version: VERSION,
    summary: [...datasetRows(metrics), ...o.describe, ...openSetRows(openSet), ['tlearn', VERSION]],
    classes: ds.classes,
    classCounts: classCounts(ds),
    samples: sampleImages(split.train, ds.classes, split.seed),
    models: [{ name: o.mode, history: o.history, test }],
    primary: { name: o.mode, metrics: test, split: 'test' },
    gallery: topLossGallery(o.test.probs, o.test.labels, o.test.paths, ds.classes),
    timings: metrics.timings,
    calibration: cal,
    labelIssues: labelIssuesSection(ds.root, o.details.excludedFiles as ExcludedJson | undefined),
  });
  return { outDir, metrics, history: o.history, report };
}
