/**
 * `loadBackbone`: a zoo name, a local TF.js layers model folder (including Teachable Machine exports) or a
 * `.tflite` file → a feature extractor model (one vector per image) plus how to feed it.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ResizeMode } from '../image/decode.js';
import { findInputShape } from './keras-graph.js';
import { sha256 } from '../util/hash.js';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import { readLayersModel, type LayersModelArtifacts } from './layers-model.js';
import { checkPublisherHash, ensureZooModel } from './model-cache.js';
import { kerasAppArtifacts } from './keras-apps/artifacts.js';
import type { PreprocessMode } from './preprocess.js';
import { allLayerNames, countParams, cutAndPool, endsInGlobalPooling, teachableMachineBackbone } from './surgery.js';
import { isTflitePath, loadTfliteBackbone, type TfliteBackboneSpec, type TfliteForm } from './tflite/load.js';
import { DEFAULT_BACKBONE, findZooEntry, ZOO, type ZooEntry } from './zoo.js';

export interface Backbone {
  /** Zoo name, or the folder's name for a local model. */
  name: string;
  /** Where it came from: the zoo name, or the absolute folder path. */
  source: string;
  /** The feature extractor: input image (NHWC), output one feature vector. Absent for a .tflite backbone. */
  artifacts?: LayersModelArtifacts;
  /** A .tflite backbone: the parsed model and how to run it (converted to ONNX where it runs). */
  tflite?: TfliteBackboneSpec;
  inputSize: [number, number];
  preprocessing: PreprocessMode;
  resize: ResizeMode;
  /** Content hash of the feature extractor (topology + weights; for .tflite, the file, the form and the cut). */
  id: string;
  params: number;
  /** How the feature extractor was made from the source model, in words. */
  note: string;
}

export interface LoadBackboneOptions {
  /** For a zoo backbone: use this Keras .h5 weights file instead of the cache (checked against Keras' hash when published). */
  weights?: string;
  /** Overrides the preprocessing (default: the zoo's, the model's metadata, else 'tf'). */
  preprocessing?: PreprocessMode;
  /** Cut a local model at this layer (default: keep its output, pooled if it is a feature map). */
  cutAt?: string;
  /** A .tflite backbone: how to run it (default 'qlinear' for quantized models; 'float' dequantizes). */
  tfliteForm?: TfliteForm;
  /** A quantized .tflite backbone: keep weights that have a zero point exactly (slower; default: requantized to symmetric int8 per channel). */
  tfliteExactWeights?: boolean;
  logger?: Logger;
}

export class BackboneError extends Error {}

/** The backbone's TF.js layers model, for what needs one (fine-tuning, model summaries); a .tflite backbone has none. */
export function backboneLayers(b: Backbone, what: string): LayersModelArtifacts {
  if (!b.artifacts) throw new BackboneError(`${what} needs a Keras or TF.js backbone; ${b.source} is a TFLite model, which tlearn runs frozen (transfer learning)`);
  return b.artifacts;
}

export function backboneId(a: LayersModelArtifacts): string {
  return sha256(Buffer.concat([Buffer.from(JSON.stringify(a.modelTopology)), Buffer.from(a.weightData)])).slice(0, 16);
}

async function readJson(file: string): Promise<any | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
}

function inputSizeOf(a: LayersModelArtifacts, label: string): [number, number] {
  const shape = findInputShape(a.modelTopology);
  if (!shape || shape.length !== 4 || !shape[1] || !shape[2]) {
    throw new BackboneError(`${label}: the model must take fixed-size images [batch, height, width, 3]; it declares ${JSON.stringify(shape)}`);
  }
  if (shape[3] !== 3) throw new BackboneError(`${label}: the model takes ${shape[3]} channels; tlearn feeds RGB (3)`);
  return [shape[1], shape[2]];
}

function finish(name: string, source: string, artifacts: LayersModelArtifacts, preprocessing: PreprocessMode, resize: ResizeMode, note: string): Backbone {
  return { name, source, artifacts, inputSize: inputSizeOf(artifacts, source), preprocessing, resize, id: backboneId(artifacts), params: countParams(artifacts), note };
}

async function loadLocal(dir: string, opts: LoadBackboneOptions): Promise<Backbone> {
  const log = opts.logger ?? silentLogger;
  const folder = dir.endsWith('.json') ? path.dirname(dir) : dir;
  const full = await readLayersModel(dir);
  const meta = await readJson(path.join(folder, 'metadata.json'));
  const name = path.basename(path.resolve(folder));
  let preprocessing: PreprocessMode = opts.preprocessing ?? meta?.preprocessing ?? 'tf';
  let resize: ResizeMode = meta?.resize === 'center-crop' ? 'center-crop' : 'squash';
  const tm = teachableMachineBackbone(full);
  if (opts.cutAt) {
    return finish(name, folder, cutAndPool(full, opts.cutAt, 'avg'), preprocessing, resize, `cut at ${opts.cutAt}, global average pooling`);
  }
  if (tm && meta?.tmVersion) {
    resize = 'center-crop';
    preprocessing = opts.preprocessing ?? 'tf';
    return finish(name, folder, tm, preprocessing, resize, `Teachable Machine export (tm ${meta.tmVersion}): its backbone, without the trained head`);
  }
  if (meta?.tlearnVersion && meta?.backbone) {
    throw new BackboneError(`${folder} is a tlearn classifier; pass the backbone it was trained on (${meta.backbone.source ?? meta.backbone.name}) instead`);
  }
  if (endsInGlobalPooling(full.modelTopology)) return finish(name, folder, full, preprocessing, resize, 'used as is (ends in global pooling)');
  if (allLayerNames(full.modelTopology).has('out_relu')) {
    return finish(name, folder, cutAndPool(full, 'out_relu', 'avg'), preprocessing, resize, 'MobileNetV2: cut at out_relu, global average pooling');
  }
  log.warn(`${folder}: using the model's output as features; pass --cut-at <layer> to cut it elsewhere`);
  return finish(name, folder, full, preprocessing, resize, 'used as is');
}

/** The whole zoo network with its weights: from --weights, or from the cache (downloading on first use). */
export async function zooArtifacts(entry: ZooEntry, opts: LoadBackboneOptions = {}): Promise<LayersModelArtifacts> {
  if (opts.weights) {
    await checkPublisherHash(entry, opts.weights);
    return kerasAppArtifacts(entry.app, opts.weights);
  }
  const dir = await ensureZooModel(entry, opts.logger);
  if (await fs.stat(path.join(dir, 'model.json')).catch(() => undefined)) return readLayersModel(dir);
  return kerasAppArtifacts(entry.app, path.join(dir, entry.file));
}

/** Loads a backbone by zoo name (downloading on first use), from a local TF.js layers model folder or a .tflite file. */
export async function loadBackbone(spec: string = DEFAULT_BACKBONE, opts: LoadBackboneOptions = {}): Promise<Backbone> {
  if (isTflitePath(spec)) return loadTfliteBackbone(spec, { cutAt: opts.cutAt, preprocessing: opts.preprocessing, form: opts.tfliteForm, exactWeights: opts.tfliteExactWeights });
  const st = await fs.stat(spec).catch(() => undefined);
  if (st) return loadLocal(spec, opts);
  const entry = findZooEntry(spec);
  if (!entry) {
    throw new BackboneError(`unknown backbone '${spec}': not a folder, and not in the zoo (${ZOO.map((e) => e.name).join(', ')})`);
  }
  const full = await zooArtifacts(entry, opts);
  const features = cutAndPool(full, entry.cutAt, entry.pooling, `${entry.name}_features`);
  const note = entry.pooling === 'none' ? `features from ${entry.cutAt}` : `cut at ${entry.cutAt}, global ${entry.pooling} pooling`;
  return finish(entry.name, entry.name, features, opts.preprocessing ?? entry.preprocessing, entry.resize, note);
}
