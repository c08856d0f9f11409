/**
 * Exporting a trained classifier: ONNX (backbone + head + softmax in one file, NHWC float32 input), a
 * TF.js layers model folder, or a static web folder that classifies in the browser (web.ts), each with the
 * metadata needed to feed it (labels, input size, preprocessing, threshold).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeLayersModel } from '../backbones/layers-model.js';
import { loadClassifier, type LoadClassifierOptions } from '../classifier/load.js';
import type { ClassifierMetadata } from '../classifier/metadata.js';
import type { ClassifierInt8Options } from '../classifier/int8.js';
import { writeFileAtomic } from '../util/fs.js';
import { ExportError, isImportedOnnx, onnxMetadataPath, runDirOf, writeOnnxClassifier } from './onnx.js';
import { exportWeb } from './web.js';

export { ExportError, isImportedOnnx, onnxMetadataPath, runDirOf, writeOnnxClassifier };
export type { OnnxMetadata } from './onnx.js';

export type ExportFormat = 'onnx' | 'tfjs' | 'web';
export const EXPORT_FORMATS: ExportFormat[] = ['onnx', 'tfjs', 'web'];

export interface ExportOptions {
  format: ExportFormat;
  /** onnx: the .onnx file to write (default <run>/model.onnx); tfjs, web: the folder (default <run>/tfjs, <run>/web). */
  out?: string;
  /** How a .tflite classifier is loaded (labels file, --dequantize). */
  classifier?: LoadClassifierOptions;
  /** onnx only: quantize the classifier's convolutions to int8 (static, calibrated; see classifier/int8.ts). */
  int8?: ClassifierInt8Options;
}

export interface ExportResult {
  format: ExportFormat;
  files: string[];
  /** Bytes written in all. */
  bytes: number;
  metadata: ClassifierMetadata & { modelFile?: string; inputName?: string; outputName?: string };
}

/** Sum of the files' sizes. */
async function totalBytes(files: string[]): Promise<number> {
  const sizes = await Promise.all(files.map((f) => fs.stat(f).then((st) => st.size)));
  return sizes.reduce((a, b) => a + b, 0);
}

export async function exportClassifier(source: string, o: ExportOptions): Promise<ExportResult> {
  const r = await writeExport(source, o);
  return { ...r, bytes: await totalBytes(r.files) };
}

async function writeExport(source: string, o: ExportOptions): Promise<Omit<ExportResult, 'bytes'>> {
  if (!EXPORT_FORMATS.includes(o.format)) throw new ExportError(`unknown export format '${o.format as string}' (choose ${EXPORT_FORMATS.join(', ')})`);
  const clf = await loadClassifier(source, o.classifier);
  if (!clf.artifacts && !isImportedOnnx(clf)) throw new ExportError(`${source} is already an exported ONNX model; export from the run folder instead`);
  const runDir = clf.source.toLowerCase().endsWith('.tflite') ? path.dirname(clf.source) : runDirOf(clf);
  if (!clf.artifacts && o.format !== 'onnx') throw new ExportError(`${source} runs on a TFLite model, which tlearn exports as ONNX only (--format onnx)`);
  if (o.int8 && o.format !== 'onnx') throw new ExportError(`--int8 applies to --format onnx (not ${o.format})`);
  if (o.format === 'onnx') {
    const file = path.resolve(o.out ?? path.join(runDir, clf.source.toLowerCase().endsWith('.tflite') ? path.basename(clf.source).replace(/\.tflite$/i, '.onnx') : 'model.onnx'));
    if (!file.toLowerCase().endsWith('.onnx')) throw new ExportError(`--out for ONNX must be a .onnx file path, got ${o.out}`);
    const meta = await writeOnnxClassifier(clf, file, undefined, {}, o.int8);
    return { format: 'onnx', files: [file, onnxMetadataPath(file)], metadata: meta };
  }
  if (o.format === 'web') return exportWeb(clf, path.resolve(o.out ?? path.join(runDir, 'web')));
  const dir = path.resolve(o.out ?? path.join(runDir, 'tfjs'));
  if (path.resolve(dir) === path.resolve(clf.source)) throw new ExportError(`--out ${dir} is the model folder itself`);
  await writeLayersModel(dir, clf.artifacts!);
  await writeFileAtomic(path.join(dir, 'metadata.json'), JSON.stringify(clf.metadata, null, 2));
  const files = (await fs.readdir(dir)).map((f) => path.join(dir, f));
  return { format: 'tfjs', files, metadata: clf.metadata };
}
