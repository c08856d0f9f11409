/**
 * Loading a shipped classifier: a run folder (its model/), a model folder (TF.js layers model +
 * metadata.json), a Teachable Machine image export, or an exported .onnx file with its metadata.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { readLayersModel, type LayersModelArtifacts } from '../backbones/layers-model.js';
import { backboneId } from '../backbones/load.js';
import { PREPROCESS_DESCRIPTIONS } from '../backbones/preprocess.js';
import { findInputShape } from '../onnx/convert.js';
import { decodeModel } from '../onnx/proto.js';
import { isDirectory } from '../util/fs.js';
import { sha256 } from '../util/hash.js';
import type { ClassifierMetadata } from './metadata.js';
import { isTflitePath } from '../backbones/tflite/load.js';
import { loadTfliteClassifier, type TfliteClassifierOptions } from './tflite.js';

async function exists(f: string): Promise<boolean> {
  return fs.stat(f).then(() => true, () => false);
}

export interface LoadedClassifier {
  /** The folder or file it was loaded from. */
  source: string;
  metadata: ClassifierMetadata;
  /** The TF.js layers model, when loaded from a model folder. */
  artifacts?: LayersModelArtifacts;
  /** ONNX bytes, when loaded from an exported .onnx file, a .tflite file or a run on a .tflite backbone. */
  onnx?: Uint8Array;
  /** Content hash (for the ONNX conversion cache). */
  id: string;
}

export class ClassifierLoadError extends Error {}

async function readJson(file: string): Promise<any | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
}

function fromTeachableMachine(meta: any, artifacts: LayersModelArtifacts, dir: string): ClassifierMetadata {
  const shape = findInputShape(artifacts.modelTopology);
  const size = (shape?.[1] as number) ?? meta.imageSize ?? 224;
  return {
    format: 'tlearn-classifier',
    tlearnVersion: `teachable-machine ${meta.tmVersion}`,
    createdAt: meta.timeStamp ?? '',
    labels: meta.labels,
    inputSize: [size, (shape?.[2] as number) ?? size],
    inputShape: [null, size, (shape?.[2] as number) ?? size, 3],
    layout: 'NHWC',
    dtype: 'float32',
    preprocessing: 'tf',
    preprocessingDescription: PREPROCESS_DESCRIPTIONS.tf,
    resize: 'center-crop',
    kernel: 'linear',
    output: 'probabilities',
    backbone: { name: 'teachable-machine', source: dir, id: '', params: 0, note: 'Teachable Machine export' },
    imageSize: size,
  };
}

/** The metadata tlearn export stores inside the ONNX file (metadata_props 'tlearn'). */
function embeddedMetadata(bytes: Uint8Array): ClassifierMetadata | undefined {
  try {
    const m = decodeModel(bytes);
    const prop = (m.metadata_props ?? []).find((p: any) => p.key === 'tlearn');
    return prop ? JSON.parse(prop.value) : undefined;
  } catch {
    return undefined;
  }
}

export interface LoadClassifierOptions extends TfliteClassifierOptions {}

/** Loads a classifier from a run folder, model folder, Teachable Machine export, .onnx file or .tflite file (with its labels). */
export async function loadClassifier(p: string, opts: LoadClassifierOptions = {}): Promise<LoadedClassifier> {
  const abs = path.resolve(p);
  if (isTflitePath(abs)) return loadTfliteClassifier(p, opts);
  if (abs.endsWith('.onnx')) {
    let bytes: Buffer;
    try {
      bytes = await fs.readFile(abs);
    } catch {
      throw new ClassifierLoadError(`${p} does not exist`);
    }
    const candidates = [abs.replace(/\.onnx$/i, '') + '.metadata.json', path.join(path.dirname(abs), 'metadata.json')];
    for (const c of candidates) {
      const meta = await readJson(c);
      if (meta?.labels) return { source: abs, metadata: meta, onnx: new Uint8Array(bytes), id: sha256(bytes).slice(0, 16) };
    }
    const embedded = embeddedMetadata(bytes);
    if (embedded) return { source: abs, metadata: embedded, onnx: new Uint8Array(bytes), id: sha256(bytes).slice(0, 16) };
    throw new ClassifierLoadError(`${p}: no metadata found (looked for ${candidates.join(' and ')}, and inside the model); tlearn export writes it next to the .onnx file`);
  }
  if (!(await isDirectory(abs))) throw new ClassifierLoadError(`${p} is not a run folder, model folder or .onnx file (nor a .tflite file)`);
  const dir = (await isDirectory(path.join(abs, 'model'))) ? path.join(abs, 'model') : abs;
  const meta = await readJson(path.join(dir, 'metadata.json'));
  // a classifier on a .tflite backbone is saved as model.onnx beside its metadata.json
  if (!(await exists(path.join(dir, 'model.json'))) && (await exists(path.join(dir, 'model.onnx')))) return { ...(await loadClassifier(path.join(dir, 'model.onnx'))), source: dir };
  let artifacts: LayersModelArtifacts;
  try {
    artifacts = await readLayersModel(dir);
  } catch (e: any) {
    throw new ClassifierLoadError(`${p}: ${e.message}`);
  }
  let metadata: ClassifierMetadata;
  if (meta?.format === 'tlearn-classifier') metadata = meta;
  else if (meta?.tmVersion && Array.isArray(meta.labels)) metadata = fromTeachableMachine(meta, artifacts, dir);
  else throw new ClassifierLoadError(`${dir} has no tlearn or Teachable Machine metadata.json (labels, preprocessing)`);
  return { source: dir, metadata, artifacts, id: backboneId(artifacts) };
}
