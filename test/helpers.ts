/** Test fixtures: generated images and datasets, tiny models built in code, and access to ../shared. */
import { existsSync, mkdtempSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp, { type Sharp } from 'sharp';
import type * as TF from '@tensorflow/tfjs';
import { writeLayersModel, type LayersModelArtifacts } from '../src/backbones/layers-model.js';
import { getTf } from '../src/runtime/tfjs.js';
import { modelArtifacts } from '../src/engine/architectures.js';
import { Rng } from '../src/util/rng.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SHARED = path.resolve(ROOT, '..', 'shared');
export const CALTECH = path.join(SHARED, 'datasets/caltech101/101_ObjectCategories');
export const HYMENOPTERA = path.join(SHARED, 'datasets/hymenoptera_data');
export const MOBILENET = path.join(SHARED, 'models/mobilenet_v2_0.35_224_imagenet_notop');
export const TM_EXPORT = path.join(SHARED, 'models/teachable_machine_export_example');
export const CALTECH_EXCLUDE = ['BACKGROUND_Google', 'Motorbikes', 'airplanes', 'Faces_easy', 'Faces'];

const warned = new Set<string>();
/** True when ../shared/<p> exists; otherwise says once, clearly, which tests skip and why. */
export function hasShared(p: string, what: string): boolean {
  if (existsSync(p)) return true;
  if (!warned.has(p)) {
    warned.add(p);
    console.warn(`SKIPPED: ${what} needs ${path.relative(ROOT, p)}, which is absent (see ../shared/README.md)`);
  }
  return false;
}

export function tmpDir(prefix = 'tlearn-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

const COLORS: Record<string, string> = { red: '#d22', green: '#2b2', blue: '#22d', yellow: '#dd2', purple: '#a2a', cyan: '#2cc' };
export const CLASS_COLORS = Object.keys(COLORS);

/** A small image: a coloured shape at a random place on a noisy background. */
export async function drawImage(color: string, rng: Rng, size = 48, shape: 'circle' | 'square' = 'circle'): Promise<Sharp> {
  const fill = COLORS[color] ?? color;
  const r = Math.round(size * (0.3 + 0.1 * rng.next()));
  const cx = Math.round(r + rng.next() * (size - 2 * r));
  const cy = Math.round(r + rng.next() * (size - 2 * r));
  const grey = 90 + rng.int(80);
  const bg = `rgb(${grey},${grey},${grey})`;
  const body = shape === 'circle' ? `<circle cx="${cx}" cy="${cy}" r="${r}" fill="${fill}"/>` : `<rect x="${cx - r}" y="${cy - r}" width="${2 * r}" height="${2 * r}" fill="${fill}"/>`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}"><rect width="100%" height="100%" fill="${bg}"/>${body}</svg>`;
  return sharp(Buffer.from(svg));
}

export interface DatasetSpec {
  /** class name → number of images */
  classes: Record<string, number>;
  ext?: string;
  seed?: number;
  size?: number;
}

/** Writes a folder of class folders of generated images; class i gets colour CLASS_COLORS[i]. */
export async function makeDataset(dir: string, spec: DatasetSpec): Promise<string> {
  const rng = new Rng(spec.seed ?? 1);
  const ext = spec.ext ?? '.jpg';
  const names = Object.keys(spec.classes);
  for (const [ci, name] of names.entries()) {
    await fs.mkdir(path.join(dir, name), { recursive: true });
    for (let i = 0; i < spec.classes[name]!; i++) {
      const img = await drawImage(CLASS_COLORS[ci % CLASS_COLORS.length]!, rng, spec.size ?? 48, ci % 2 ? 'square' : 'circle');
      const file = path.join(dir, name, `img_${String(i).padStart(3, '0')}${ext}`);
      if (/jpe?g$/i.test(ext)) await img.jpeg({ quality: 90 }).toFile(file);
      else await img.png().toFile(file);
    }
  }
  return dir;
}

/** A tfjs model as TF.js layers model artifacts (in memory). */
export const saveArtifacts = (tf: typeof TF, model: TF.LayersModel): Promise<LayersModelArtifacts> => modelArtifacts(tf, model);

/**
 * A tiny CNN backbone (32x32 input, 4-D output ending in a layer named out_relu, like MobileNetV2) saved as a
 * TF.js layers model folder. Its first layer responds to +/- each colour channel, so images of different
 * colours give clearly different features; the rest is random.
 */
export async function makeTinyBackbone(dir: string, size = 32, seed = 3): Promise<string> {
  const tf = await getTf();
  const input = tf.input({ shape: [size, size, 3], name: 'image' });
  const colour = new Float32Array(3 * 8);
  for (let c = 0; c < 3; c++) {
    colour[c * 8 + c] = 1;
    colour[c * 8 + c + 3] = -1;
  }
  let x = tf.layers.conv2d({ filters: 8, kernelSize: 1, strides: 2, activation: 'relu', name: 'c1' }).apply(input) as TF.SymbolicTensor;
  x = tf.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, padding: 'same', kernelInitializer: tf.initializers.glorotUniform({ seed }), name: 'c2' }).apply(x) as TF.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'c2_bn' }).apply(x) as TF.SymbolicTensor;
  x = tf.layers.reLU({ maxValue: 6, name: 'out_relu' }).apply(x) as TF.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: x, name: 'tiny_backbone' });
  const c1 = model.getLayer('c1');
  c1.setWeights([tf.tensor4d(colour, [1, 1, 3, 8]), tf.zeros([8])]);
  await writeLayersModel(dir, await saveArtifacts(tf, model));
  model.dispose();
  return dir;
}

export async function runCli(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin/tlearn.js'), ...args], { env: { ...process.env, ...env }, cwd, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as any).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/**
 * Writes a Keras-layout weights file for a Keras application: weights copied from `source` where it has them
 * (e.g. the shared MobileNetV2), otherwise weight number k (in the architecture's order) filled with (k + 1) / 1000.
 */
export async function writeAppH5(spec: import('../src/backbones/keras-apps/build.js').KerasAppSpec, file: string, o: { source?: LayersModelArtifacts; shuffle?: boolean; extraLayer?: boolean; compress?: boolean } = {}): Promise<Map<string, number>> {
  const { kerasAppTopology } = await import('../src/backbones/keras-apps/artifacts.js');
  const { writeKerasH5 } = await import('../src/backbones/keras-apps/h5.js');
  const { decodeWeights } = await import('../src/backbones/layers-model.js');
  const src = o.source ? decodeWeights(o.source) : undefined;
  const { weights } = await kerasAppTopology(spec);
  const fills = new Map<string, number>();
  const layers = new Map<string, Array<{ name: string; shape: number[]; data: Float32Array }>>();
  weights.forEach((w, k) => {
    const key = `${w.layer}/${w.weight}`;
    const fromSource = src?.get(key);
    const n = w.shape.reduce((a, b) => a * b, 1);
    const data = fromSource ? fromSource.data : new Float32Array(n).fill((k + 1) / 1000);
    if (!fromSource) fills.set(key, (k + 1) / 1000);
    if (!layers.has(w.layer)) layers.set(w.layer, []);
    layers.get(w.layer)!.push({ name: w.weight, shape: w.shape, data });
  });
  let list = [...layers].map(([name, ws]) => ({ name, weights: ws }));
  if (o.shuffle) list = new Rng(5).shuffle(list);
  if (o.extraLayer) list.push({ name: 'not_in_the_model', weights: [{ name: 'kernel', shape: [2], data: new Float32Array([1, 2]) }] });
  await writeKerasH5(file, list, { compress: o.compress });
  return fills;
}

/**
 * Checks every parameter gradient of a training graph against central finite differences of its loss, on one
 * batch: `samples` random entries per parameter, steps of 1e-3 (small, so a bias step does not cross ReLU kinks).
 */
export async function checkTrainingGradients(
  build: import('../src/onnx/convert.js').OnnxGraphBuild,
  tg: import('../src/engine/grad/builder.js').TrainingGraph,
  x: Float32Array,
  onehot: Float32Array,
  o: { samples: number; seed: number },
): Promise<void> {
  const ort = await import('onnxruntime-node');
  const { expect } = await import('vitest');
  const s = await ort.InferenceSession.create(tg.bytes, { intraOpNumThreads: 1 });
  const n = tg.batch;
  const classes = onehot.length / n;
  const params = build.params.map((p) => new Float32Array(p.initial));
  const run = async () => {
    const feeds: Record<string, import('onnxruntime-node').Tensor> = {
      [tg.inputName]: new ort.Tensor('float32', x, [n, ...(build.kerasInputShape.slice(1) as number[])]),
      [tg.labelsName]: new ort.Tensor('float32', onehot, [n, classes]),
      [tg.weightsName]: new ort.Tensor('float32', new Float32Array(n).fill(1), [n]),
    };
    build.params.forEach((p, i) => (feeds[p.onnxName] = new ort.Tensor('float32', params[i]!, p.dims)));
    return s.run(feeds);
  };
  const base = await run();
  const rng = new Rng(o.seed);
  for (const [k, p] of tg.params.entries()) {
    const analytic = base[p.grad]!.data as Float32Array;
    for (let t = 0; t < o.samples; t++) {
      const i = rng.int(params[k]!.length);
      const eps = 1e-3;
      params[k]![i]! += eps;
      const lp = ((await run())[tg.lossName]!.data as Float32Array)[0]!;
      params[k]![i]! -= 2 * eps;
      const lm = ((await run())[tg.lossName]!.data as Float32Array)[0]!;
      params[k]![i]! += eps;
      const numeric = (lp - lm) / (2 * eps);
      expect(Math.abs(numeric - analytic[i]!), `${build.params[k]!.kerasName}[${i}] numeric ${numeric} analytic ${analytic[i]}`).toBeLessThanOrEqual(2e-3 + 3e-2 * Math.abs(numeric));
    }
  }
  await s.release();
}
