/**
 * Evaluating a trained classifier on any labelled folder (class folders): images stream through the model in
 * batches, classes the model does not know are reported (their images are left out of the metrics), and the
 * metrics, per-image predictions and report.html are written to the output folder.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { loadClassifier, type LoadClassifierOptions } from '../classifier/load.js';
import { createClassifierRunner, effectiveThreshold } from '../classifier/predict.js';
import { describeRejection, rejectionStats, type RejectionStats } from '../classifier/threshold.js';
import { loadImageFolder, type LabelledImage, type SkippedFile } from '../data/discover.js';
import { streamImages } from '../runtime/image-stream.js';
import { TTA_VARIANTS } from '../image/augment.js';
import { predictionsCsv, topLossGallery, writeReport, type ReportFiles } from '../report/html.js';
import { writeFileAtomic } from '../util/fs.js';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import { VERSION } from '../version.js';
import { computeMetrics, type Metrics } from './metrics.js';

export interface EvaluateOptions {
  /** Test-time augmentation (flips and centre crops averaged). */
  tta?: boolean;
  /** Open-set threshold (default: the model's, from its metadata; 0 turns it off). */
  threshold?: number;
  /** Output folder (default runs/evaluate-<timestamp>). */
  out?: string;
  batchSize?: number;
  threads?: number;
  /** How to load a .tflite classifier (labels file, --dequantize). */
  classifier?: LoadClassifierOptions;
  logger?: Logger;
}

export interface EvaluationResult {
  outDir: string;
  model: string;
  data: string;
  /** Which images were evaluated, in words (e.g. the test/ folder of a pre-split dataset). */
  scope: string;
  metrics: Metrics;
  /** What the open-set threshold rejects here (threshold 0 when the model has none and none was given). */
  openSet: RejectionStats;
  /** Classes in the folder that the model does not know, with their image counts (not evaluated). */
  unknownClasses: Array<{ name: string; images: number }>;
  /** Model classes with no images in the folder. */
  missingClasses: string[];
  skippedFiles: SkippedFile[];
  seconds: number;
  report: ReportFiles;
}

export class EvaluationError extends Error {}

export async function evaluateFolder(modelPath: string, dataPath: string, o: EvaluateOptions = {}): Promise<EvaluationResult> {
  const log = o.logger ?? silentLogger;
  const t0 = performance.now();
  const clf = await loadClassifier(modelPath, o.classifier);
  const threshold = effectiveThreshold(clf, o.threshold);
  const ds = await loadImageFolder(dataPath);
  const labels = clf.metadata.labels;
  let images: LabelledImage[] = ds.images;
  let scope = `all ${ds.images.length} images`;
  if (ds.predefined) {
    images = ds.predefined.test ?? ds.predefined.val;
    scope = ds.predefined.test ? 'the test/ folder' : 'the validation folder (no test/ folder)';
  }
  const index = new Map(labels.map((l, i) => [l, i]));
  const unknown = new Map<string, number>();
  const kept: Array<{ path: string; label: number }> = [];
  for (const im of images) {
    const name = ds.classes[im.label]!;
    const k = index.get(name);
    if (k === undefined) unknown.set(name, (unknown.get(name) ?? 0) + 1);
    else kept.push({ path: im.path, label: k });
  }
  const unknownClasses = [...unknown].map(([name, n]) => ({ name, images: n }));
  for (const u of unknownClasses) log.warn(`class '${u.name}' (${u.images} images) is not one of the model's classes; its images are not evaluated`);
  const present = new Set(kept.map((k) => k.label));
  const missingClasses = labels.filter((_, i) => !present.has(i));
  if (!kept.length) throw new EvaluationError(`none of the classes in ${dataPath} (${ds.classes.join(', ')}) is a class of the model (${labels.slice(0, 10).join(', ')}${labels.length > 10 ? ', ...' : ''})`);

  const runner = await createClassifierRunner(clf, { threads: o.threads, logger: log });
  const progress = log.progress('evaluate', kept.length);
  let r;
  try {
    r = await streamImages(
      kept.map((k) => k.path),
      runner,
      { inputSize: clf.metadata.inputSize, preprocessing: clf.metadata.preprocessing, resize: clf.metadata.resize, kernel: clf.metadata.kernel, batchSize: o.batchSize, progress, variants: o.tta ? TTA_VARIANTS : undefined },
    );
  } finally {
    progress.done();
    await runner.close();
  }
  const K = labels.length;
  const okIdx = kept.map((_, i) => i).filter((i) => r.ok[i]);
  const probs = new Float32Array(okIdx.length * K);
  okIdx.forEach((i, k) => probs.set(r.outputs.subarray(i * K, (i + 1) * K), k * K));
  const y = okIdx.map((i) => kept[i]!.label);
  const paths = okIdx.map((i) => kept[i]!.path);
  const metrics = computeMetrics(probs, y, labels);
  const openSet = rejectionStats(probs, y, threshold);

  const outDir = path.resolve(o.out ?? path.join('runs', `evaluate-${new Date().toISOString().replace(/\.\d+Z$/, '').replace(/:/g, '-')}`));
  await fs.mkdir(outDir, { recursive: true });
  const skippedFiles = [...ds.skipped, ...r.failed];
  const seconds = (performance.now() - t0) / 1000;
  const counts = labels.map(() => 0);
  for (const k of kept) counts[k.label]!++;
  const report = await writeReport(outDir, {
    title: `Evaluation of ${path.basename(clf.source === path.join(path.dirname(clf.source), 'model') ? path.dirname(clf.source) : clf.source)} on ${path.basename(ds.root)}`,
    kind: 'evaluate',
    createdAt: new Date().toISOString(),
    version: VERSION,
    summary: [
      ['model', clf.source],
      ['data', `${ds.root} (${scope})`],
      ['images evaluated', String(metrics.n)],
      ['model classes', String(labels.length)],
      ['classes not known to the model', unknownClasses.length ? unknownClasses.map((u) => `${u.name} (${u.images})`).join(', ') : 'none'],
      ['model classes without images here', missingClasses.length ? missingClasses.join(', ') : 'none'],
      ['skipped files', String(skippedFiles.length)],
      ['preprocessing', `${clf.metadata.preprocessingDescription}; ${clf.metadata.resize} to ${clf.metadata.inputSize.join('x')}`],
      ['runtime', runner.backend],
      ['open-set threshold', `${threshold > 0 ? describeRejection(openSet) : 'none'}${o.threshold === undefined ? (clf.metadata.threshold ? ' (the model\'s default)' : ' (the model has none)') : ''}`],
      ['test-time augmentation', o.tta ? `${TTA_VARIANTS.length} views averaged (flip, centre crop 87.5%)` : 'none'],
    ],
    classes: labels,
    classCounts: counts,
    models: [{ name: 'model', test: metrics }],
    primary: { name: 'model', metrics, split: 'evaluation' },
    gallery: topLossGallery(probs, y, paths, labels),
    timings: { total: seconds },
  });
  await writeFileAtomic(path.join(outDir, 'predictions.csv'), predictionsCsv(probs, y, paths, labels));
  const result = { outDir, model: clf.source, data: ds.root, scope, metrics, openSet, unknownClasses, missingClasses, skippedFiles, seconds, report };
  const { report: _r, ...json } = result;
  await writeFileAtomic(path.join(outDir, 'metrics.json'), JSON.stringify({ tlearnVersion: VERSION, ...json }, null, 2));
  return result;
}
