/** Constant TFLite tensors as typed arrays: raw, dequantized to float, and permuted from TFLite's layouts to ONNX's. */
import type { TfliteTensor } from '../../backbones/tflite/reader.js';
import { TensorType } from '../../backbones/tflite/schema.js';

export type QType = 'u8' | 'i8';

export function qtypeOf(t: TfliteTensor): QType | undefined {
  if (t.type === TensorType.UINT8) return 'u8';
  if (t.type === TensorType.INT8) return 'i8';
  return undefined;
}

export const QRANGE: Record<QType, [number, number]> = { u8: [0, 255], i8: [-128, 127] };

/** An aligned copy of a constant's bytes (flatbuffer data need not be 4-byte aligned). */
function aligned(d: Uint8Array): ArrayBuffer {
  return d.slice().buffer;
}

function float16ToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** The constant's integer or float values as numbers' typed array, not dequantized. */
export function rawValues(t: TfliteTensor): Float32Array | Int32Array | Uint8Array | Int8Array {
  const d = t.data!;
  switch (t.type) {
    case TensorType.FLOAT32:
      return new Float32Array(aligned(d));
    case TensorType.FLOAT16: {
      const h = new Uint16Array(aligned(d));
      return Float32Array.from(h, float16ToFloat);
    }
    case TensorType.INT32:
      return new Int32Array(aligned(d));
    case TensorType.UINT8:
      return new Uint8Array(aligned(d));
    case TensorType.INT8:
      return new Int8Array(aligned(d));
    case TensorType.INT64: {
      const v = new BigInt64Array(aligned(d));
      return Int32Array.from(v, (x) => Number(x));
    }
    default:
      throw new Error(`constant tensor ${t.name} has type ${t.typeName}, which tlearn does not read`);
  }
}

/** Dequantized values (real = scale * (q - zero_point), per channel along the quantized axis when there are several scales). */
export function floatValues(t: TfliteTensor): Float32Array {
  const raw = rawValues(t);
  const q = t.quantization;
  if (t.type === TensorType.FLOAT32 || t.type === TensorType.FLOAT16 || !q) return raw instanceof Float32Array ? raw : Float32Array.from(raw);
  const out = new Float32Array(raw.length);
  if (q.scale.length === 1) {
    const s = q.scale[0]!;
    const z = q.zeroPoint[0] ?? 0;
    for (let i = 0; i < raw.length; i++) out[i] = s * (raw[i]! - z);
    return out;
  }
  const dim = t.shape[q.axis]!;
  const inner = t.shape.slice(q.axis + 1).reduce((a, b) => a * b, 1);
  for (let i = 0; i < raw.length; i++) {
    const c = Math.floor(i / inner) % dim;
    out[i] = q.scale[c]! * (raw[i]! - (q.zeroPoint[c] ?? 0));
  }
  return out;
}

type Arr = Float32Array | Int32Array | Uint8Array | Int8Array;

/** Permutes a 4-D array: out dims = perm.map(p => shape[p]). */
export function permute4<T extends Arr>(data: T, shape: number[], perm: number[]): T {
  const out = new (data.constructor as new (n: number) => T)(data.length);
  const [, d1, d2, d3] = shape as [number, number, number, number];
  const strides = [d1 * d2 * d3, d2 * d3, d3, 1];
  const od = perm.map((p) => shape[p]!);
  const os = perm.map((p) => strides[p]!);
  let k = 0;
  for (let a = 0; a < od[0]!; a++)
    for (let b = 0; b < od[1]!; b++)
      for (let c = 0; c < od[2]!; c++) {
        const base = a * os[0]! + b * os[1]! + c * os[2]!;
        for (let e = 0; e < od[3]!; e++) out[k++] = data[base + e * os[3]!]!;
      }
  return out;
}
