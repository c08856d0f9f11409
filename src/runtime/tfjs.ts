/**
 * TensorFlow.js for training: tfjs-node when it is installed (native, fast), else the WebAssembly backend.
 * Loaded lazily so commands that do not train never pay for it.
 */
import type * as TF from '@tensorflow/tfjs';
import { patchWasmKernels } from './wasm-kernels.js';

let loaded: Promise<typeof TF> | undefined;
let backendName = '';

async function tryTfjsNode(): Promise<typeof TF | undefined> {
  if (process.env.TLEARN_NO_TFJS_NODE) return undefined;
  try {
    const mod: any = await import('@tensorflow/tfjs-node' as string);
    const tf = (mod.default ?? mod) as typeof TF;
    await tf.ready();
    return tf;
  } catch {
    return undefined;
  }
}

async function load(): Promise<typeof TF> {
  const native = await tryTfjsNode();
  if (native) {
    backendName = `tfjs-node (${native.getBackend()})`;
    return native;
  }
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-wasm');
  const prefer = process.env.TLEARN_TFJS_BACKEND ?? 'wasm';
  if (!(await tf.setBackend(prefer))) throw new Error(`tfjs backend '${prefer}' could not be initialised`);
  await tf.ready();
  if (tf.getBackend() === 'wasm') patchWasmKernels(tf);
  backendName = `tfjs-${tf.getBackend()}`;
  return tf;
}

/** The tfjs module, initialised with the best available backend. */
export function getTf(): Promise<typeof TF> {
  loaded ??= load();
  return loaded;
}

/** e.g. 'tfjs-wasm' or 'tfjs-node (tensorflow)'; empty before getTf() resolves. */
export function tfBackendName(): string {
  return backendName;
}
