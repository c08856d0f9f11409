/** Class probabilities for image files with a loaded classifier, preprocessed exactly as in training. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { findImages, type SkippedFile } from '../data/discover.js';
import { nonImageReason } from '../data/walk.js';
import { TTA_VARIANTS } from '../image/augment.js';
import { createRunner, onnxRunner, type InferenceRunner } from '../runtime/inference.js';
import { streamImages } from '../runtime/image-stream.js';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import type { LoadedClassifier } from './load.js';

export interface LabelProbability {
  label: string;
  probability: number;
}

export interface Prediction {
  path: string;
  /** The top classes, most probable first. */
  top: LabelProbability[];
  /** All class probabilities in label order. */
  probabilities: number[];
  /** The best probability is under the open-set threshold. */
  unknown: boolean;
}

export interface PredictResult {
  predictions: Prediction[];
  failed: SkippedFile[];
  runtime: string;
  /** The open-set threshold used (0: none). */
  threshold: number;
}

export interface PredictOptions {
  top?: number;
  /** Open-set threshold on the best probability (default: the model's, from its metadata; 0 turns it off). */
  threshold?: number;
  /** Average over flipped and centre-cropped views (test-time augmentation). */
  tta?: boolean;
  batchSize?: number;
  threads?: number;
  logger?: Logger;
}

/** Expands files and folders (walked recursively) into image paths; what cannot be used is reported. */
export async function expandInputs(inputs: string[]): Promise<{ files: string[]; skipped: SkippedFile[] }> {
  const files: string[] = [];
  const skipped: SkippedFile[] = [];
  for (const input of inputs) {
    const st = await fs.stat(input).catch(() => undefined);
    if (!st) skipped.push({ path: input, reason: 'no such file or folder' });
    else if (st.isDirectory()) {
      const found = await findImages(input);
      files.push(...found.images);
      skipped.push(...found.skipped);
    } else {
      // named one by one: judged by content, as in folders
      const reason = st.isFile() ? await nonImageReason(input, st.size) : 'not a regular file';
      if (reason) skipped.push({ path: input, reason });
      else files.push(path.resolve(input));
    }
  }
  return { files, skipped };
}

export async function createClassifierRunner(c: LoadedClassifier, opts: { threads?: number; logger?: Logger } = {}): Promise<InferenceRunner> {
  if (c.onnx) {
    return onnxRunner(c.onnx, { inputSize: c.metadata.inputSize, threads: opts.threads });
  }
  return createRunner(c.artifacts!, { inputSize: c.metadata.inputSize, cacheKey: c.id, threads: opts.threads, logger: opts.logger });
}

export function topK(probs: ArrayLike<number>, labels: string[], k: number): LabelProbability[] {
  return Array.from(probs, (p, i) => ({ label: labels[i]!, probability: p }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, Math.min(k, labels.length));
}

/** The threshold to use: the one asked for, else the model's default (0 when it has none). */
export function effectiveThreshold(c: LoadedClassifier, asked?: number): number {
  if (asked !== undefined) {
    if (!(asked >= 0 && asked <= 1)) throw new RangeError(`the threshold must be a probability in [0, 1], got ${asked}`);
    return asked;
  }
  return c.metadata.threshold?.value ?? 0;
}

/** One image's answer from its class probabilities: the top k and whether it is "unknown". */
export function readProbabilities(probs: ArrayLike<number>, labels: string[], k: number, threshold: number): { top: LabelProbability[]; unknown: boolean } {
  let best = 0;
  for (let i = 1; i < probs.length; i++) if (probs[i]! > probs[best]!) best = i;
  return { top: topK(probs, labels, k), unknown: probs[best]! < threshold };
}

export async function predictImages(c: LoadedClassifier, inputs: string[], opts: PredictOptions = {}): Promise<PredictResult> {
  const log = opts.logger ?? silentLogger;
  const threshold = effectiveThreshold(c, opts.threshold);
  const { files, skipped } = await expandInputs(inputs);
  const runner = await createClassifierRunner(c, opts);
  try {
    const labels = c.metadata.labels;
    if (runner.outputDim !== labels.length) throw new Error(`the model has ${runner.outputDim} outputs but its metadata lists ${labels.length} labels`);
    const progress = files.length > 50 ? log.progress('predict', files.length) : undefined;
    const r = await streamImages(files, runner, {
      inputSize: c.metadata.inputSize,
      preprocessing: c.metadata.preprocessing,
      resize: c.metadata.resize,
      kernel: c.metadata.kernel,
      batchSize: opts.batchSize,
      progress,
      variants: opts.tta ? TTA_VARIANTS : undefined,
    });
    progress?.done();
    const K = labels.length;
    const predictions: Prediction[] = [];
    files.forEach((f, i) => {
      if (!r.ok[i]) return;
      const probabilities = Array.from(r.outputs.subarray(i * K, (i + 1) * K));
      predictions.push({ path: f, ...readProbabilities(probabilities, labels, opts.top ?? 5, threshold), probabilities });
    });
    return { predictions, failed: [...skipped, ...r.failed], runtime: runner.backend, threshold };
  } finally {
    await runner.close();
  }
}
