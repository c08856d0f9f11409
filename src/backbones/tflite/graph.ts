/** Reading a TFLite model's graph: where its features are, where to cut it, what it holds. */
import { TensorType } from './schema.js';
import type { TfliteModel } from './reader.js';

/** A TFLite model tlearn cannot use as asked: an operator it does not convert, a non-image input, a bad cut. */
export class TfliteConvertError extends Error {}

function rawInts(m: TfliteModel, i: number | undefined): number[] {
  const t = i === undefined || i < 0 ? undefined : m.tensors[i];
  if (!t?.data) return [];
  const d = t.data.slice();
  if (t.type === TensorType.INT32) return Array.from(new Int32Array(d.buffer));
  if (t.type === TensorType.INT64) return Array.from(new BigInt64Array(d.buffer), Number);
  return [];
}

/** The pooled feature layer: the output of the last global pooling (AVERAGE_POOL_2D over the whole map, or MEAN over height and width). */
export function findFeatureTensor(m: TfliteModel): { tensor: number; note: string } | undefined {
  for (let i = m.operators.length - 1; i >= 0; i--) {
    const op = m.operators[i]!;
    const inp = m.tensors[op.inputs[0]!];
    if (!inp || inp.shape.length !== 4) continue;
    if (op.opName === 'AVERAGE_POOL_2D') {
      const out = m.tensors[op.outputs[0]!]!;
      if (out.shape[1] === 1 && out.shape[2] === 1) return { tensor: op.outputs[0]!, note: `global average pooling (operator ${op.index}, AVERAGE_POOL_2D)` };
    }
    if (op.opName === 'MEAN') {
      const axes = rawInts(m, op.inputs[1]).map((a) => (a < 0 ? a + 4 : a));
      if (axes.length === 2 && axes.includes(1) && axes.includes(2)) return { tensor: op.outputs[0]!, note: `global average pooling (operator ${op.index}, MEAN over height and width)` };
    }
  }
  return undefined;
}

export function resolveCut(m: TfliteModel, cutAt: string): number {
  const file = m.file;
  if (/^\d+$/.test(cutAt)) {
    const op = m.operators[Number(cutAt)];
    if (!op) throw new TfliteConvertError(`${file}: --cut-at ${cutAt}: the model has operators 0..${m.operators.length - 1}`);
    return op.outputs[0]!;
  }
  const exact = m.tensors.findIndex((t) => t.name === cutAt);
  if (exact >= 0) return exact;
  const produced = new Set(m.operators.flatMap((o) => o.outputs));
  const partial = m.tensors.filter((t) => produced.has(t.index) && t.name.includes(cutAt));
  if (partial.length === 1) return partial[0]!.index;
  const hint = partial.length ? `${partial.length} tensors contain it` : 'no tensor contains it';
  throw new TfliteConvertError(`${file}: --cut-at '${cutAt}': ${hint}; pass a full tensor name or an operator number (0..${m.operators.length - 1}; see \`tlearn models info ${file}\`)`);
}


/** Parameters: the values of the constant weight tensors (not shapes or axes). */
export function countTfliteParams(m: TfliteModel): number {
  const consumers = new Map<number, string>();
  for (const op of m.operators) op.inputs.forEach((i, k) => k > 0 && i >= 0 && consumers.set(i, op.opName));
  let n = 0;
  for (const t of m.tensors) {
    if (!t.data) continue;
    const role = consumers.get(t.index);
    if (role && ['RESHAPE', 'MEAN', 'PAD', 'SQUEEZE'].includes(role)) continue;
    n += t.shape.reduce((a, b) => a * b, 1);
  }
  return n;
}

/** The ops of a model by name, with counts ("CONV_2D x36, ..."). */
export function describeOps(m: TfliteModel): string {
  const counts = new Map<string, number>();
  for (const op of m.operators) counts.set(op.opName, (counts.get(op.opName) ?? 0) + 1);
  return [...counts].map(([k, v]) => `${k} x${v}`).join(', ');
}

/** True when some quantized weights have a non-zero zero point (uint8 asymmetric models), which the converter requantizes by default. */
export function hasWeightZeroPoints(m: TfliteModel): boolean {
  return m.tensors.some((t) => t.data && (t.type === TensorType.UINT8 || t.type === TensorType.INT8) && t.quantization?.zeroPoint.some((z) => z !== 0));
}

/** True when the model holds quantized (uint8 or int8) weights. */
export function isQuantizedModel(m: TfliteModel): boolean {
  return m.tensors.some((t) => t.data && (t.type === TensorType.UINT8 || t.type === TensorType.INT8) && t.quantization);
}
