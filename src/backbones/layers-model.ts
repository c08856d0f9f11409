/**
 * TF.js layers models on disk (`model.json` + weight shards) as plain data: read, write, decode weights.
 * This is the format tf.loadLayersModel reads and Teachable Machine exports.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/fs.js';

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool' | string;
  quantization?: { dtype: 'uint8' | 'uint16' | 'float16'; scale?: number; min?: number };
}

/** Keras/TF.js model topology as found in model.json's `modelTopology`. */
export interface KerasTopology {
  class_name: string;
  config: any;
  keras_version?: string;
  backend?: string;
}

export interface LayersModelArtifacts {
  modelTopology: KerasTopology;
  weightSpecs: WeightSpec[];
  /** All weight bytes, concatenated in weightSpecs order. */
  weightData: ArrayBuffer;
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  /** Anything else found in model.json (e.g. userDefinedMetadata), kept as is. */
  extra?: Record<string, unknown>;
}

export interface NamedWeight {
  name: string;
  shape: number[];
  data: Float32Array;
}

export class ModelFormatError extends Error {}

const QUANT_BYTES: Record<string, number> = { uint8: 1, uint16: 2, float16: 2 };
const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

function specBytes(spec: WeightSpec): number {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.quantization) return n * (QUANT_BYTES[spec.quantization.dtype] ?? NaN);
  return n * (DTYPE_BYTES[spec.dtype] ?? NaN);
}

/** Reads a TF.js layers model folder (or a path to its model.json). */
export async function readLayersModel(dirOrJson: string): Promise<LayersModelArtifacts> {
  const jsonPath = dirOrJson.endsWith('.json') ? dirOrJson : path.join(dirOrJson, 'model.json');
  let text: string;
  try {
    text = await fs.readFile(jsonPath, 'utf8');
  } catch (e: any) {
    throw new ModelFormatError(`cannot read ${jsonPath}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  }
  let json: any;
  try {
    json = JSON.parse(text);
  } catch (e: any) {
    throw new ModelFormatError(`${jsonPath} is not valid JSON: ${e.message}`);
  }
  return parseLayersModelJson(json, path.dirname(jsonPath), jsonPath);
}

async function parseLayersModelJson(json: any, dir: string, label: string): Promise<LayersModelArtifacts> {
  if (!json || typeof json !== 'object' || !json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new ModelFormatError(`${label} is not a TF.js layers model (needs modelTopology and weightsManifest)`);
  }
  if (json.format && json.format !== 'layers-model') {
    throw new ModelFormatError(`${label} has format '${json.format}'; tlearn reads TF.js layers models ('layers-model'), not graph models`);
  }
  const topology = json.modelTopology.model_config ?? json.modelTopology;
  const weightSpecs: WeightSpec[] = [];
  const chunks: Buffer[] = [];
  for (const group of json.weightsManifest) {
    const groupBytes: Buffer[] = [];
    for (const p of group.paths as string[]) {
      const file = path.join(dir, p);
      try {
        groupBytes.push(await fs.readFile(file));
      } catch (e: any) {
        throw new ModelFormatError(`${label}: weight file ${file} is missing or unreadable (${e.code ?? e.message})`);
      }
    }
    const data = Buffer.concat(groupBytes);
    const expected = (group.weights as WeightSpec[]).reduce((a, s) => a + specBytes(s), 0);
    if (data.length !== expected) {
      throw new ModelFormatError(`${label}: weight files ${group.paths.join(', ')} hold ${data.length} bytes, the manifest describes ${expected}`);
    }
    weightSpecs.push(...group.weights);
    chunks.push(data);
  }
  const all = Buffer.concat(chunks);
  const { modelTopology: _t, weightsManifest: _w, format, generatedBy, convertedBy, ...extra } = json;
  return {
    modelTopology: topology,
    weightSpecs,
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer,
    format: format ?? 'layers-model',
    generatedBy,
    convertedBy,
    extra,
  };
}

/** Writes a TF.js layers model folder: model.json + weights.bin (one shard). */
export async function writeLayersModel(dir: string, a: LayersModelArtifacts): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const json = {
    format: 'layers-model',
    generatedBy: a.generatedBy ?? 'tlearn',
    convertedBy: a.convertedBy ?? null,
    ...(a.extra ?? {}),
    modelTopology: a.modelTopology,
    weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
  };
  await writeFileAtomic(path.join(dir, 'weights.bin'), new Uint8Array(a.weightData));
  await writeFileAtomic(path.join(dir, 'model.json'), JSON.stringify(json));
}

function halfToFloat(h: number): number {
  const s = (h & 0x8000) >> 15;
  const e = (h & 0x7c00) >> 10;
  const f = h & 0x03ff;
  const sign = s ? -1 : 1;
  if (e === 0) return sign * 2 ** -14 * (f / 1024);
  if (e === 0x1f) return f ? NaN : sign * Infinity;
  return sign * 2 ** (e - 15) * (1 + f / 1024);
}

/** Decodes every weight to float32 (dequantising uint8/uint16/float16 as TF.js does). */
export function decodeWeights(a: LayersModelArtifacts): Map<string, NamedWeight> {
  const out = new Map<string, NamedWeight>();
  let offset = 0;
  const buf = a.weightData;
  for (const spec of a.weightSpecs) {
    const n = spec.shape.reduce((x, y) => x * y, 1);
    const bytes = specBytes(spec);
    let data: Float32Array;
    const q = spec.quantization;
    if (q) {
      if (q.dtype === 'float16') {
        const u = new Uint16Array(buf.slice(offset, offset + bytes));
        data = Float32Array.from(u, halfToFloat);
      } else {
        const u = q.dtype === 'uint8' ? new Uint8Array(buf, offset, n) : new Uint16Array(buf.slice(offset, offset + bytes));
        const scale = q.scale ?? 1;
        const min = q.min ?? 0;
        data = Float32Array.from(u, (v) => v * scale + min);
      }
    } else if (spec.dtype === 'float32') {
      data = new Float32Array(buf.slice(offset, offset + bytes));
    } else if (spec.dtype === 'int32') {
      data = Float32Array.from(new Int32Array(buf.slice(offset, offset + bytes)));
    } else if (spec.dtype === 'bool') {
      data = Float32Array.from(new Uint8Array(buf, offset, n));
    } else {
      throw new ModelFormatError(`weight ${spec.name} has unsupported dtype ${spec.dtype}`);
    }
    out.set(spec.name, { name: spec.name, shape: spec.shape, data });
    offset += bytes;
  }
  return out;
}

/** Concatenates float32 weights into artifacts' weightSpecs + weightData. */
export function encodeWeights(weights: NamedWeight[]): { weightSpecs: WeightSpec[]; weightData: ArrayBuffer } {
  const total = weights.reduce((a, w) => a + w.data.length, 0);
  const all = new Float32Array(total);
  let o = 0;
  for (const w of weights) {
    all.set(w.data, o);
    o += w.data.length;
  }
  return {
    weightSpecs: weights.map((w) => ({ name: w.name, shape: w.shape, dtype: 'float32' })),
    weightData: all.buffer,
  };
}
