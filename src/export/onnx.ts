/** The classifier as one ONNX file, with its metadata inside (metadata_props) and next to it. */
import path from 'node:path';
import type { LoadedClassifier } from '../classifier/load.js';
import type { ClassifierMetadata } from '../classifier/metadata.js';
import { withOutputAndMetadata } from '../onnx/compose.js';
import { classifierInt8, type ClassifierInt8Options } from '../classifier/int8.js';
import { layersModelToOnnx } from '../onnx/convert.js';
import { writeFileAtomic } from '../util/fs.js';

export class ExportError extends Error {}

export type OnnxMetadata = ClassifierMetadata & { modelFile: string; inputName: string; outputName: string; int8?: Record<string, unknown> };

/** Where `tlearn predict` looks for an .onnx file's metadata: next to it, as <name>.metadata.json. */
export function onnxMetadataPath(onnxFile: string): string {
  return onnxFile.replace(/\.onnx$/i, '') + '.metadata.json';
}

/** The run folder of a model folder (<run>/model → <run>). */
export function runDirOf(clf: LoadedClassifier): string {
  return path.basename(clf.source) === 'model' ? path.dirname(clf.source) : clf.source;
}

/** A classifier held as ONNX that tlearn made on load (a .tflite file, or a run on a .tflite backbone), as opposed to an exported .onnx file. */
export function isImportedOnnx(clf: LoadedClassifier): boolean {
  return !!clf.onnx && !clf.source.toLowerCase().endsWith('.onnx');
}

/** Writes the classifier (backbone + head + softmax) as one ONNX file, and its metadata as JSON next to it. */
export async function writeOnnxClassifier(clf: LoadedClassifier, file: string, metaFile = onnxMetadataPath(file), extra: Record<string, unknown> = {}, int8?: ClassifierInt8Options): Promise<OnnxMetadata> {
  if (!clf.artifacts && !isImportedOnnx(clf)) throw new ExportError(`${clf.source} is already an exported ONNX model; export from the run folder instead`);
  if (int8 && !clf.artifacts) throw new ExportError(`--int8 quantizes tlearn's own float models; ${clf.source} is an imported model (a quantized TFLite model already runs on integer kernels)`);
  const meta: OnnxMetadata = { ...clf.metadata, ...extra, format: 'tlearn-classifier', modelFile: path.basename(file), inputName: 'input', outputName: 'probabilities' };
  if (int8) {
    // the float graph is quantized below; say so in the metadata written into it and next to it
    meta.int8 = { format: 'QDQ (QuantizeLinear/DequantizeLinear; onnxruntime runs QLinearConv)', activations: 'uint8, one scale per tensor', weights: 'int8, one scale per output channel', calibrationImages: int8.calibrationImages ?? 300, calibratedOn: int8.calibrate ?? 'the run\'s training split' };
  }
  const props = { labels: JSON.stringify(meta.labels), preprocessing: meta.preprocessing, inputSize: JSON.stringify(meta.inputSize), resize: meta.resize, tlearn: JSON.stringify(meta) };
  const doc = `tlearn classifier: ${meta.labels.length} classes; input NHWC float32 [batch, ${meta.inputSize.join(', ')}, 3], ${meta.preprocessingDescription}`;
  let bytes = clf.artifacts ? layersModelToOnnx(clf.artifacts, { outputName: 'probabilities', metadata: props, docString: doc }).bytes : withOutputAndMetadata(clf.onnx!, 'probabilities', props, doc);
  if (int8) {
    const q = await classifierInt8(clf, int8, bytes);
    bytes = q.bytes;
    meta.int8 = { ...meta.int8!, calibrationImages: q.calibrated, quantized: q.report };
  }
  await writeFileAtomic(file, bytes);
  await writeFileAtomic(metaFile, JSON.stringify(meta, null, 2));
  return meta;
}
