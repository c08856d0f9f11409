/**
 * Frozen forward passes. onnxruntime-node (native, multi-threaded) runs the model converted to ONNX; the
 * converted file is cached by content hash so conversion happens once per model. If onnxruntime cannot be
 * loaded, tfjs runs the layers model instead (and says so once).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import type { LayersModelArtifacts } from '../backbones/layers-model.js';
import { layersModelToOnnx } from '../onnx/convert.js';
import { writeFileAtomic } from '../util/fs.js';
import { sha256 } from '../util/hash.js';
import { tlearnHome } from '../util/home.js';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import { getTf, tfBackendName } from './tfjs.js';

export interface InferenceRunner {
  readonly backend: string;
  /** Output values per input row. */
  readonly outputDim: number;
  /** Runs `batch` NHWC float32 images; returns batch*outputDim values. */
  run(input: Float32Array, batch: number): Promise<Float32Array>;
  close(): Promise<void>;
}

export interface RunnerOptions {
  inputSize: [number, number];
  /** Content key for the ONNX cache (defaults to a hash of the artifacts). */
  cacheKey?: string;
  threads?: number;
  logger?: Logger;
  /** 'onnxruntime' (default, falls back to tfjs) or 'tfjs'. Env TLEARN_RUNTIME overrides. */
  prefer?: 'onnxruntime' | 'tfjs';
}

let warnedFallback = false;

export function onnxCacheDir(): string {
  return path.join(tlearnHome(), 'onnx');
}

/** The model as ONNX bytes, converted once and cached under $TLEARN_HOME/onnx/. */
export async function cachedOnnx(artifacts: LayersModelArtifacts, key?: string): Promise<Uint8Array> {
  const k = key ?? sha256(Buffer.concat([Buffer.from(JSON.stringify(artifacts.modelTopology)), Buffer.from(artifacts.weightData)])).slice(0, 16);
  const file = path.join(onnxCacheDir(), `${k}.onnx`);
  try {
    return new Uint8Array(await fs.readFile(file));
  } catch {
    const { bytes } = layersModelToOnnx(artifacts);
    await writeFileAtomic(file, bytes);
    return bytes;
  }
}

export function defaultThreads(): number {
  return Math.max(1, os.availableParallelism());
}

/** A runner for ONNX bytes on onnxruntime-node. */
export async function onnxRunner(bytes: Uint8Array, opts: Pick<RunnerOptions, 'inputSize' | 'threads'>): Promise<InferenceRunner> {
  const ort = await import('onnxruntime-node');
  const threads = opts.threads ?? defaultThreads();
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // Spinning intra-op threads burn the cores that sharp needs for decoding the next batch.
    extra: { session: { intra_op: { allow_spinning: process.env.TLEARN_ORT_SPIN ?? '0' } } },
  });
  const inName = session.inputNames[0]!;
  const outName = session.outputNames[0]!;
  const [h, w] = opts.inputSize;
  const meta = session.outputMetadata?.[0] as any;
  let outputDim = Array.isArray(meta?.shape) ? Number(meta.shape[meta.shape.length - 1]) : NaN;
  if (!Number.isFinite(outputDim)) {
    const probe = await session.run({ [inName]: new ort.Tensor('float32', new Float32Array(h * w * 3), [1, h, w, 3]) });
    outputDim = probe[outName]!.data.length;
  }
  return {
    backend: `onnxruntime (${threads} thread${threads > 1 ? 's' : ''})`,
    outputDim,
    async run(input, batch) {
      const res = await session.run({ [inName]: new ort.Tensor('float32', input, [batch, h, w, 3]) });
      return res[outName]!.data as Float32Array;
    },
    close: () => session.release(),
  };
}

async function tfjsRunner(artifacts: LayersModelArtifacts, opts: RunnerOptions): Promise<InferenceRunner> {
  const tf = await getTf();
  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: artifacts.modelTopology as any, weightSpecs: artifacts.weightSpecs as any, weightData: artifacts.weightData }));
  const [h, w] = opts.inputSize;
  const outShape = (model.outputs[0]!.shape as number[]).slice(1);
  const outputDim = outShape.reduce((a, b) => a * b, 1);
  return {
    backend: tfBackendName(),
    outputDim,
    async run(input, batch) {
      const y = tf.tidy(() => model.predict(tf.tensor4d(input.subarray(0, batch * h * w * 3), [batch, h, w, 3])) as TF.Tensor);
      const data = (await y.data()) as Float32Array;
      y.dispose();
      return data;
    },
    async close() {
      model.dispose();
    },
  };
}

/** A runner for a layers model: onnxruntime when available, tfjs otherwise. */
export async function createRunner(artifacts: LayersModelArtifacts, opts: RunnerOptions): Promise<InferenceRunner> {
  const log = opts.logger ?? silentLogger;
  const prefer = (process.env.TLEARN_RUNTIME as RunnerOptions['prefer']) ?? opts.prefer ?? 'onnxruntime';
  if (prefer !== 'tfjs') {
    try {
      const bytes = await cachedOnnx(artifacts, opts.cacheKey);
      return await onnxRunner(bytes, opts);
    } catch (e: any) {
      if (!warnedFallback) {
        log.warn(`onnxruntime unavailable (${String(e.message ?? e).split('\n')[0]}); running the model with tfjs instead, which is much slower`);
        warnedFallback = true;
      }
    }
  }
  return tfjsRunner(artifacts, opts);
}
