/**
 * The models a server answers for: each loaded with the classifier loader, run by the classifier's runner
 * behind a dynamic batcher, and described by a model card (labels, input, preprocessing, backbone, test
 * metrics, threshold) built from its metadata and, for a run folder, its metrics.json.
 */
import path from 'node:path';
import { loadClassifier, type LoadClassifierOptions, type LoadedClassifier } from '../classifier/load.js';
import { createClassifierRunner } from '../classifier/predict.js';
import { createInt8ClassifierRunner, type ClassifierInt8Options } from '../classifier/int8.js';
import { readRunInfo, type TestSummary } from '../classifier/run-info.js';
import type { InferenceRunner } from '../runtime/inference.js';
import type { Logger } from '../util/log.js';
import { Batcher, type BatcherOptions } from './batcher.js';

export interface ModelSpec {
  name: string;
  path: string;
}

export interface ModelCard {
  name: string;
  labels: string[];
  classes: number;
  /** [height, width] */
  inputSize: [number, number];
  layout: 'NHWC';
  preprocessing: string;
  preprocessingDescription: string;
  resize: string;
  backbone: { name: string; params: number; note: string };
  /** The default open-set threshold and how it was chosen (null: none). */
  threshold: { value: number; rule: string } | null;
  /** Test-split metrics of the training run, when the model came from a run folder. */
  test: TestSummary | null;
  format: 'run folder' | 'model folder' | 'onnx' | 'teachable machine';
  tlearnVersion: string;
  createdAt: string;
  /** URL of the run's report.html, served read-only (null when there is none). */
  report: string | null;
  runtime: string;
}

export interface ServedModel {
  name: string;
  classifier: LoadedClassifier;
  runner: InferenceRunner;
  batcher: Batcher;
  card: ModelCard;
  /** The run's report.html on disk (served as is, never a path from a request). */
  reportFile?: string;
}

export class ModelSpecError extends Error {}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The name a model is served under by default: its run folder's (for <run>/model) or its folder or file name. */
export function defaultModelName(p: string): string {
  const abs = path.resolve(p);
  let base = path.basename(abs);
  if (base === 'model') base = path.basename(path.dirname(abs));
  return base.replace(/\.(onnx|tflite)$/i, '').replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[._-]+/, '').slice(0, 64) || 'model';
}

/** `path` or `name=path`. */
export function parseModelSpec(a: string): ModelSpec {
  const m = /^([^=/\\]+)=(.+)$/.exec(a);
  if (!m) return { name: defaultModelName(a), path: a };
  return { name: m[1]!, path: m[2]! };
}

/** Names must be valid in a URL segment and unique. */
export function checkModelSpecs(specs: ModelSpec[]): ModelSpec[] {
  if (!specs.length) throw new ModelSpecError('no model given: pass a run folder, model folder, .onnx file or Teachable Machine export');
  const seen = new Map<string, string>();
  for (const s of specs) {
    if (!NAME.test(s.name)) throw new ModelSpecError(`model name '${s.name}' (for ${s.path}) must be letters, digits, '.', '_' or '-' (at most 64, not starting with a symbol)`);
    if (seen.has(s.name)) throw new ModelSpecError(`two models are named '${s.name}' (${seen.get(s.name)} and ${s.path}); name them with name=path`);
    seen.set(s.name, s.path);
  }
  return specs;
}

function formatOf(c: LoadedClassifier, hasMetrics: boolean): ModelCard['format'] {
  if (c.onnx) return 'onnx';
  if (c.metadata.tlearnVersion.startsWith('teachable-machine')) return 'teachable machine';
  return hasMetrics ? 'run folder' : 'model folder';
}

export async function buildCard(name: string, c: LoadedClassifier, runtime: string): Promise<{ card: ModelCard; reportFile?: string }> {
  const info = await readRunInfo(c);
  const m = c.metadata;
  const card: ModelCard = {
    name,
    labels: m.labels,
    classes: m.labels.length,
    inputSize: m.inputSize,
    layout: m.layout,
    preprocessing: m.preprocessing,
    preprocessingDescription: m.preprocessingDescription,
    resize: m.resize,
    backbone: { name: m.backbone.name, params: m.backbone.params, note: m.backbone.note },
    threshold: m.threshold ? { value: m.threshold.value, rule: m.threshold.rule } : null,
    test: info.test,
    format: formatOf(c, !!info.test),
    tlearnVersion: m.tlearnVersion,
    createdAt: m.createdAt,
    report: info.reportFile ? `/v1/models/${encodeURIComponent(name)}/report.html` : null,
    runtime,
  };
  return { card, reportFile: info.reportFile };
}

export interface LoadModelsOptions {
  threads?: number;
  /** How .tflite classifiers are loaded (labels file, --dequantize). */
  classifier?: LoadClassifierOptions;
  batching?: BatcherOptions;
  logger?: Logger;
  /** Serve int8 versions of the models (calibrated on their runs' training images, or on `int8.calibrate`). */
  int8?: Omit<ClassifierInt8Options, 'threads' | 'logger'>;
  /** Called after every forward pass (for metrics). */
  onBatch?: (model: string, size: number, seconds: number) => void;
}

/** Loads every model, starts its runner and runs one warm-up pass so the first request is not slow. */
export async function loadServedModels(specs: ModelSpec[], o: LoadModelsOptions = {}): Promise<ServedModel[]> {
  const served: ServedModel[] = [];
  const runners: InferenceRunner[] = [];
  try {
    for (const s of specs) {
      const classifier = await loadClassifier(s.path, o.classifier);
      const runner = o.int8 ? await createInt8ClassifierRunner(classifier, { ...o.int8, threads: o.threads, logger: o.logger }) : await createClassifierRunner(classifier, { threads: o.threads, logger: o.logger });
      runners.push(runner);
      const labels = classifier.metadata.labels;
      if (runner.outputDim !== labels.length) throw new ModelSpecError(`${s.path}: the model has ${runner.outputDim} outputs but its metadata lists ${labels.length} labels`);
      const [h, w] = classifier.metadata.inputSize;
      await runner.run(new Float32Array(h * w * 3), 1);
      const batcher = new Batcher(runner, h * w * 3, { ...o.batching, onBatch: (n, sec) => o.onBatch?.(s.name, n, sec) });
      const { card, reportFile } = await buildCard(s.name, classifier, runner.backend);
      served.push({ name: s.name, classifier, runner, batcher, card, reportFile });
    }
  } catch (e) {
    await Promise.all(runners.map((r) => r.close()));
    throw e;
  }
  return served;
}
