/**
 * Exporting a trained classifier: ONNX (backbone + head + softmax in one file, NHWC float32 input) or a
 * TF.js layers model folder, each with the metadata needed to feed it (labels, input size, preprocessing).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeLayersModel } from '../backbones/layers-model.js';
import { loadClassifier } from '../classifier/load.js';
import type { ClassifierMetadata } from '../classifier/metadata.js';
import { writeFileAtomic } from '../util/fs.js';
import { layersModelToOnnx } from '../onnx/convert.js';

export type ExportFormat = 'onnx' | 'tfjs';
export const EXPORT_FORMATS: ExportFormat[] = ['onnx', 'tfjs'];

export interface ExportOptions {
  format: ExportFormat;
  /** onnx: the .onnx file to write (default <run>/model.onnx); tfjs: the folder (default <run>/tfjs). */
  out?: string;
}

export interface ExportResult {
  format: ExportFormat;
  files: string[];
  metadata: ClassifierMetadata & { modelFile?: string; inputName?: string; outputName?: string };
}

export class ExportError extends Error {}

/** Where `tlearn predict` looks for an .onnx file's metadata: next to it, as <name>.metadata.json. */
export function onnxMetadataPath(onnxFile: string): string {
  return onnxFile.replace(/\.onnx$/i, '') + '.metadata.json';
}

export async function exportClassifier(source: string, o: ExportOptions): Promise<ExportResult> {
  const clf = await loadClassifier(source);
  if (!clf.artifacts) throw new ExportError(`${source} is already an exported ONNX model; export from the run folder instead`);
  const runDir = path.basename(clf.source) === 'model' ? path.dirname(clf.source) : clf.source;
  if (o.format === 'onnx') {
    const file = path.resolve(o.out ?? path.join(runDir, 'model.onnx'));
    if (!file.toLowerCase().endsWith('.onnx')) throw new ExportError(`--out for ONNX must be a .onnx file path, got ${o.out}`);
    const meta = { ...clf.metadata, format: 'tlearn-classifier' as const, modelFile: path.basename(file), inputName: 'input', outputName: 'probabilities' };
    const exp = layersModelToOnnx(clf.artifacts, {
      outputName: 'probabilities',
      metadata: { labels: JSON.stringify(meta.labels), preprocessing: meta.preprocessing, inputSize: JSON.stringify(meta.inputSize), resize: meta.resize, tlearn: JSON.stringify(meta) },
      docString: `tlearn classifier: ${meta.labels.length} classes; input NHWC float32 [batch, ${meta.inputSize.join(', ')}, 3], ${meta.preprocessingDescription}`,
    });
    await writeFileAtomic(file, exp.bytes);
    const metaFile = onnxMetadataPath(file);
    await writeFileAtomic(metaFile, JSON.stringify(meta, null, 2));
    return { format: 'onnx', files: [file, metaFile], metadata: meta };
  }
  if (o.format === 'tfjs') {
    const dir = path.resolve(o.out ?? path.join(runDir, 'tfjs'));
    if (path.resolve(dir) === path.resolve(clf.source)) throw new ExportError(`--out ${dir} is the model folder itself`);
    await writeLayersModel(dir, clf.artifacts);
    await writeFileAtomic(path.join(dir, 'metadata.json'), JSON.stringify(clf.metadata, null, 2));
    const files = (await fs.readdir(dir)).map((f) => path.join(dir, f));
    return { format: 'tfjs', files, metadata: clf.metadata };
  }
  throw new ExportError(`unknown export format '${o.format as string}' (choose ${EXPORT_FORMATS.join(' or ')})`);
}
