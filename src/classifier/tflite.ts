/**
 * A `.tflite` image classifier as a shipped model: converted to ONNX (integer operators for quantized models,
 * or dequantized to float), with its labels file (next to it, or given) and the metadata to feed it.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PREPROCESS_DESCRIPTIONS, type PreprocessMode } from '../backbones/preprocess.js';
import { countTfliteParams } from '../backbones/tflite/graph.js';
import { readTfliteFile, tfliteImageInput, tflitePreprocessing, type TfliteForm } from '../backbones/tflite/load.js';
import { tfliteToOnnx } from '../onnx/tflite/convert.js';
import { sha256 } from '../util/hash.js';
import type { ClassifierMetadata } from './metadata.js';

export class TfliteLabelsError extends Error {}

export interface TfliteClassifierOptions {
  /** The labels file (one label a line); default: found next to the model. */
  labels?: string;
  /** Default 'qlinear' for quantized models; 'float' dequantizes (--dequantize). */
  form?: TfliteForm;
  /** Keep weights that have a zero point exactly (--exact-weights; default: requantized to symmetric int8 per channel, exact in all but a few channels). */
  exactWeights?: boolean;
  preprocessing?: PreprocessMode;
}

/** Where a model's labels file is looked for, in order: <name>.txt, <name>_labels.txt, <name>.labels.txt, labels.txt, then the one *labels*.txt beside it. */
export async function findLabelsFile(model: string): Promise<{ file?: string; tried: string[] }> {
  const dir = path.dirname(model);
  const base = path.basename(model).replace(/\.tflite$/i, '');
  const tried = [`${base}.txt`, `${base}_labels.txt`, `${base}.labels.txt`, 'labels.txt'].map((n) => path.join(dir, n));
  for (const f of tried) if (await fs.stat(f).then((s) => s.isFile()).catch(() => false)) return { file: f, tried };
  const others = (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => /labels.*\.txt$/i.test(n));
  tried.push(path.join(dir, '*labels*.txt'));
  return { file: others.length === 1 ? path.join(dir, others[0]!) : undefined, tried };
}

/** One label a line; blank lines at the end are dropped, blank lines inside are an error. */
export async function readLabelsFile(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e: any) {
    throw new TfliteLabelsError(e.code === 'ENOENT' ? `labels file ${file} does not exist` : `labels file ${file}: ${e.message}`);
  }
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/).map((l) => l.trim());
  while (lines.length && !lines[lines.length - 1]) lines.pop();
  const blank = lines.findIndex((l) => !l);
  if (blank >= 0) throw new TfliteLabelsError(`labels file ${file}: line ${blank + 1} is empty`);
  if (!lines.length) throw new TfliteLabelsError(`labels file ${file} is empty`);
  return lines;
}

export async function loadTfliteClassifier(p: string, opts: TfliteClassifierOptions = {}): Promise<{ source: string; metadata: ClassifierMetadata; onnx: Uint8Array; id: string }> {
  const f = await readTfliteFile(p);
  const m = f.model;
  const inputSize = tfliteImageInput(m);
  const conv = tfliteToOnnx(m, { form: opts.form, output: 'model', probabilities: true, exactWeights: opts.exactWeights });
  const run = conv.requantized ? `${conv.form}, weights requantized to symmetric int8 per channel` : conv.form;
  let labelsFile = opts.labels;
  if (!labelsFile) {
    const found = await findLabelsFile(f.file);
    if (!found.file) throw new TfliteLabelsError(`${p}: no labels file found (looked for ${found.tried.join(', ')}); pass --labels <file>, one label a line`);
    labelsFile = found.file;
  }
  const labels = await readLabelsFile(labelsFile);
  if (labels.length !== conv.outputDim) {
    throw new TfliteLabelsError(`labels file ${labelsFile} has ${labels.length} labels, but ${p} outputs ${conv.outputDim} classes`);
  }
  const preprocessing = tflitePreprocessing(m, opts.preprocessing);
  const id = sha256(`${f.hash}|${conv.form}${conv.requantized ? '|requantized-weights' : ''}`).slice(0, 16);
  const metadata: ClassifierMetadata = {
    format: 'tlearn-classifier',
    tlearnVersion: `tflite import (${conv.form})`,
    createdAt: '',
    labels,
    inputSize,
    inputShape: [null, inputSize[0], inputSize[1], 3],
    layout: 'NHWC',
    dtype: 'float32',
    preprocessing,
    preprocessingDescription: PREPROCESS_DESCRIPTIONS[preprocessing],
    resize: 'squash',
    kernel: 'linear',
    output: 'probabilities',
    backbone: { name: path.basename(f.file), source: f.file, id, params: countTfliteParams(m), note: `TFLite model (${conv.quantized ? 'quantized' : 'float'}; run as ${run}); labels from ${labelsFile}` },
    imageSize: inputSize[0],
  };
  return { source: f.file, metadata, onnx: conv.bytes, id };
}
