/**
 * Reading Keras HDF5 weight files (model.save_weights / keras.applications downloads) with h5wasm:
 * root attribute `layer_names`, one group per layer with attribute `weight_names`, datasets at
 * <layer>/<weight_name> (e.g. block1_conv1/block1_conv1/kernel:0). Full-model files keep the same layout
 * under `model_weights`.
 */
import { promises as fs } from 'node:fs';

export interface H5Weight {
  /** Short name: kernel, bias, gamma, beta, moving_mean, moving_variance, depthwise_kernel... */
  name: string;
  shape: number[];
  data: Float32Array;
}

export class H5FormatError extends Error {}

let h5Module: Promise<any> | undefined;

async function h5(): Promise<any> {
  h5Module ??= (async () => {
    const mod: any = await import('h5wasm/node');
    const lib = mod.default ?? mod;
    await lib.ready;
    return lib;
  })();
  return h5Module;
}

function strings(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return [v];
  return Array.from(v as ArrayLike<unknown>, (x) => (x instanceof Uint8Array ? new TextDecoder().decode(x) : String(x)));
}

function shortName(weightName: string): string {
  const last = weightName.split('/').pop()!;
  return last.replace(/:\d+$/, '');
}

/** Layer name → its weights, in file order. */
export async function readKerasH5(file: string): Promise<Map<string, H5Weight[]>> {
  let head: Buffer;
  try {
    const fh = await fs.open(file, 'r');
    head = Buffer.alloc(8);
    await fh.read(head, 0, 8, 0);
    await fh.close();
  } catch (e: any) {
    throw new H5FormatError(`cannot read ${file} (${e.code ?? e.message})`);
  }
  if (!head.equals(Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]))) throw new H5FormatError(`${file} is not an HDF5 file (Keras .h5 weights expected)`);
  const lib = await h5();
  let f: any;
  try {
    f = new lib.File(file, 'r');
  } catch (e: any) {
    throw new H5FormatError(`cannot open ${file} as HDF5: ${e.message ?? e}`);
  }
  try {
    if (f.type !== undefined && f.keys === undefined) throw new H5FormatError(`${file} is not an HDF5 file`);
    const root = f.keys().includes('model_weights') ? f.get('model_weights') : f;
    const layerNames = strings(root.attrs?.layer_names?.value);
    if (!layerNames.length) throw new H5FormatError(`${file} has no 'layer_names' attribute: not a Keras weights file`);
    const out = new Map<string, H5Weight[]>();
    for (const layer of layerNames) {
      const g = root.get(layer);
      if (!g) throw new H5FormatError(`${file}: layer group '${layer}' is missing`);
      const names = strings(g.attrs?.weight_names?.value);
      const weights: H5Weight[] = [];
      for (const wn of names) {
        const ds = g.get(wn);
        if (!ds) throw new H5FormatError(`${file}: dataset ${layer}/${wn} is missing`);
        const value = ds.value;
        const data = value instanceof Float32Array ? value : Float32Array.from(value as ArrayLike<number>);
        weights.push({ name: shortName(wn), shape: ds.shape as number[], data });
      }
      out.set(layer, weights);
    }
    return out;
  } finally {
    f.close();
  }
}

/** Writes a Keras-layout weights file (for tests and for exporting TF.js weights to Keras). */
export async function writeKerasH5(file: string, layers: Array<{ name: string; weights: H5Weight[] }>, opts: { compress?: boolean } = {}): Promise<void> {
  const lib = await h5();
  const f = new lib.File(file, 'w');
  try {
    f.create_attribute('layer_names', layers.map((l) => l.name));
    f.create_attribute('backend', 'tensorflow');
    f.create_attribute('keras_version', '2.2.4');
    for (const l of layers) {
      const g = f.create_group(l.name);
      g.create_attribute('weight_names', l.weights.map((w) => `${l.name}/${w.name}:0`));
      const inner = l.weights.length ? g.create_group(l.name) : undefined;
      for (const w of l.weights) {
        const args: Record<string, unknown> = { name: `${w.name}:0`, data: w.data, shape: w.shape, dtype: '<f' };
        if (opts.compress && w.data.length > 1024) Object.assign(args, { chunks: w.shape.map((d, i) => (i === w.shape.length - 1 ? d : 1)), compression: 'gzip', compression_opts: 1 });
        inner.create_dataset(args);
      }
    }
  } finally {
    f.close();
  }
}
