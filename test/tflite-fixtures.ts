/**
 * Tiny .tflite models built in the test with the flatbuffers builder (the fields of TFLite's schema.fbs, as
 * src/backbones/tflite/schema.ts lists them), a float reference forward pass for them in plain JS, and their
 * uint8 (asymmetric, per-tensor) and int8 (per-channel) quantized versions.
 */
import { Builder } from 'flatbuffers';
import { Builtin, BuiltinOptionsType, F, TensorType, type BuiltinName } from '../src/backbones/tflite/schema.js';
import { Rng } from '../src/util/rng.js';

export interface FxTensor {
  name: string;
  shape: number[];
  type: number;
  data?: Uint8Array;
  q?: { scale: number[]; zp: number[]; axis?: number };
}

type OptField = [index: number, kind: 'i8' | 'i32' | 'f32' | 'ints', value: number | number[]];

export interface FxOp {
  op: BuiltinName;
  inputs: number[];
  outputs: number[];
  optionsType?: number;
  options?: OptField[];
}

export interface FxModel {
  tensors: FxTensor[];
  ops: FxOp[];
  inputs: number[];
  outputs: number[];
}

function intVector(b: Builder, v: number[]): number {
  b.startVector(4, v.length, 4);
  for (let i = v.length - 1; i >= 0; i--) b.addInt32(v[i]!);
  return b.endVector();
}

function floatVector(b: Builder, v: number[]): number {
  b.startVector(4, v.length, 4);
  for (let i = v.length - 1; i >= 0; i--) b.addFloat32(v[i]!);
  return b.endVector();
}

function longVector(b: Builder, v: number[]): number {
  b.startVector(8, v.length, 8);
  for (let i = v.length - 1; i >= 0; i--) b.addInt64(BigInt(v[i]!));
  return b.endVector();
}

function tableVector(b: Builder, offs: number[]): number {
  b.startVector(4, offs.length, 4);
  for (let i = offs.length - 1; i >= 0; i--) b.addOffset(offs[i]!);
  return b.endVector();
}

/** The model as .tflite bytes (file identifier TFL3, schema version 3). */
export function buildTflite(m: FxModel): Uint8Array {
  const b = new Builder(1024);
  // buffers: 0 is the empty sentinel, then one per constant tensor
  const bufferOffs: number[] = [];
  const bufferOf = new Map<number, number>();
  b.startObject(3);
  bufferOffs.push(b.endObject());
  m.tensors.forEach((t, i) => {
    if (!t.data) return;
    b.startVector(1, t.data.length, 16);
    for (let k = t.data.length - 1; k >= 0; k--) b.addInt8(t.data[k]!);
    const data = b.endVector();
    b.startObject(3);
    b.addFieldOffset(F.Buffer.data, data, 0);
    bufferOf.set(i, bufferOffs.length);
    bufferOffs.push(b.endObject());
  });
  const tensorOffs = m.tensors.map((t, i) => {
    const name = b.createString(t.name);
    const shape = intVector(b, t.shape);
    let q = 0;
    if (t.q) {
      const scale = floatVector(b, t.q.scale);
      const zp = longVector(b, t.q.zp);
      b.startObject(7);
      b.addFieldOffset(F.QuantizationParameters.scale, scale, 0);
      b.addFieldOffset(F.QuantizationParameters.zero_point, zp, 0);
      b.addFieldInt32(F.QuantizationParameters.quantized_dimension, t.q.axis ?? 0, 0);
      q = b.endObject();
    }
    b.startObject(6);
    b.addFieldOffset(F.Tensor.shape, shape, 0);
    b.addFieldInt8(F.Tensor.type, t.type, 0);
    b.addFieldInt32(F.Tensor.buffer, bufferOf.get(i) ?? 0, 0);
    b.addFieldOffset(F.Tensor.name, name, 0);
    if (q) b.addFieldOffset(F.Tensor.quantization, q, 0);
    return b.endObject();
  });
  const codes = [...new Set(m.ops.map((o) => o.op))];
  const codeOffs = codes.map((c) => {
    b.startObject(4);
    b.addFieldInt8(F.OperatorCode.deprecated_builtin_code, Math.min(Builtin[c], 127), 0);
    b.addFieldInt32(F.OperatorCode.version, 1, 1);
    b.addFieldInt32(F.OperatorCode.builtin_code, Builtin[c], 0);
    return b.endObject();
  });
  const opOffs = m.ops.map((o) => {
    let opts = 0;
    if (o.options) {
      const vecs = o.options.map(([, kind, v]) => (kind === 'ints' ? intVector(b, v as number[]) : 0));
      b.startObject(8);
      o.options.forEach(([i, kind, v], k) => {
        if (kind === 'i8') b.addFieldInt8(i, v as number, 0);
        else if (kind === 'i32') b.addFieldInt32(i, v as number, 0);
        else if (kind === 'f32') b.addFieldFloat32(i, v as number, 0);
        else b.addFieldOffset(i, vecs[k]!, 0);
      });
      opts = b.endObject();
    }
    const inputs = intVector(b, o.inputs);
    const outputs = intVector(b, o.outputs);
    b.startObject(5);
    b.addFieldInt32(F.Operator.opcode_index, codes.indexOf(o.op), 0);
    b.addFieldOffset(F.Operator.inputs, inputs, 0);
    b.addFieldOffset(F.Operator.outputs, outputs, 0);
    if (opts) {
      b.addFieldInt8(F.Operator.builtin_options_type, o.optionsType ?? 0, 0);
      b.addFieldOffset(F.Operator.builtin_options, opts, 0);
    }
    return b.endObject();
  });
  const tensors = tableVector(b, tensorOffs);
  const ops = tableVector(b, opOffs);
  const inputs = intVector(b, m.inputs);
  const outputs = intVector(b, m.outputs);
  const sgName = b.createString('main');
  b.startObject(5);
  b.addFieldOffset(F.SubGraph.tensors, tensors, 0);
  b.addFieldOffset(F.SubGraph.inputs, inputs, 0);
  b.addFieldOffset(F.SubGraph.outputs, outputs, 0);
  b.addFieldOffset(F.SubGraph.operators, ops, 0);
  b.addFieldOffset(F.SubGraph.name, sgName, 0);
  const sg = b.endObject();
  const subgraphs = tableVector(b, [sg]);
  const opcodes = tableVector(b, codeOffs);
  const buffers = tableVector(b, bufferOffs);
  const desc = b.createString('tlearn test fixture');
  b.startObject(5);
  b.addFieldInt32(F.Model.version, 3, 0);
  b.addFieldOffset(F.Model.operator_codes, opcodes, 0);
  b.addFieldOffset(F.Model.subgraphs, subgraphs, 0);
  b.addFieldOffset(F.Model.description, desc, 0);
  b.addFieldOffset(F.Model.buffers, buffers, 0);
  const root = b.endObject();
  b.finish(root, 'TFL3');
  return b.asUint8Array().slice();
}

// ---- a small float network and its reference forward pass (NHWC, batch 1) ----

export interface TinyWeights {
  w1: Float32Array; // [4, 3, 3, 3] conv, stride 2
  b1: Float32Array;
  wd: Float32Array; // [1, 3, 3, 4] depthwise
  bd: Float32Array;
  wf: Float32Array; // [3, 4] dense
  bf: Float32Array;
}

export const TINY = { h: 8, w: 8, c1: 4, classes: 3 };

export function tinyWeights(seed = 7): TinyWeights {
  const r = new Rng(seed);
  const rand = (n: number, s: number) => Float32Array.from({ length: n }, () => (r.next() * 2 - 1) * s);
  return { w1: rand(4 * 27, 0.5), b1: rand(4, 0.2), wd: rand(36, 0.5), bd: rand(4, 0.2), wf: rand(12, 1.5), bf: rand(3, 0.3) };
}

const relu6 = (v: number) => Math.min(6, Math.max(0, v));

/** conv (groups = 1 or depthwise), TF 'SAME' padding, relu6. */
function conv(x: Float32Array, h: number, w: number, cin: number, k: Float32Array, bias: Float32Array, cout: number, stride: number, depthwise: boolean): { y: Float32Array; h: number; w: number } {
  const oh = Math.ceil(h / stride);
  const ow = Math.ceil(w / stride);
  const padH = Math.floor(Math.max((oh - 1) * stride + 3 - h, 0) / 2);
  const padW = Math.floor(Math.max((ow - 1) * stride + 3 - w, 0) / 2);
  const y = new Float32Array(oh * ow * cout);
  for (let i = 0; i < oh; i++)
    for (let j = 0; j < ow; j++)
      for (let o = 0; o < cout; o++) {
        let s = bias[o]!;
        for (let a = 0; a < 3; a++)
          for (let c = 0; c < 3; c++) {
            const yy = i * stride + a - padH;
            const xx = j * stride + c - padW;
            if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
            if (depthwise) s += x[(yy * w + xx) * cin + o]! * k[(a * 3 + c) * cout + o]!;
            else for (let ci = 0; ci < cin; ci++) s += x[(yy * w + xx) * cin + ci]! * k[((o * 3 + a) * 3 + c) * cin + ci]!;
          }
        y[(i * ow + j) * cout + o] = relu6(s);
      }
  return { y, h: oh, w: ow };
}

/** Every intermediate of the tiny network for one real-valued input image [8, 8, 3]. */
export function tinyForward(x: Float32Array, W: TinyWeights): { t1: Float32Array; t2: Float32Array; t3: Float32Array; pooled: Float32Array; logits: Float32Array; probs: Float32Array } {
  const { y: t1, h, w } = conv(x, TINY.h, TINY.w, 3, W.w1, W.b1, 4, 2, false);
  const { y: t2 } = conv(t1, h, w, 4, W.wd, W.bd, 4, 1, true);
  const t3 = t1.map((v, i) => v + t2[i]!);
  const pooled = new Float32Array(4);
  for (let i = 0; i < h * w; i++) for (let c = 0; c < 4; c++) pooled[c]! += t3[i * 4 + c]! / (h * w);
  const logits = Float32Array.from({ length: 3 }, (_, o) => W.bf[o]! + [0, 1, 2, 3].reduce((s, c) => s + W.wf[o * 4 + c]! * pooled[c]!, 0));
  const m = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - m));
  const sum = e.reduce((a, b) => a + b, 0);
  return { t1, t2, t3, pooled, logits, probs: e.map((v) => v / sum) };
}

// ---- the network as TFLite: float, uint8 per-tensor, int8 per-channel ----

const f32 = (a: Float32Array) => new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
const i32 = (a: Int32Array) => new Uint8Array(a.buffer.slice(0));

function actQ(lo: number, hi: number, kind: 'u8' | 'i8'): { scale: number[]; zp: number[] } {
  lo = Math.min(lo, 0);
  hi = Math.max(hi, lo + 1e-3);
  const scale = (hi - lo) / 255;
  const zp = Math.round(-lo / scale) + (kind === 'i8' ? -128 : 0);
  return { scale: [scale], zp: [zp] };
}

function quantU8(a: Float32Array): { data: Uint8Array; scale: number; zp: number } {
  const lo = Math.min(0, ...a);
  const hi = Math.max(0, ...a);
  const scale = (hi - lo) / 255;
  const zp = Math.round(-lo / scale);
  return { data: Uint8Array.from(a, (v) => Math.max(0, Math.min(255, Math.round(v / scale) + zp))), scale, zp };
}

/** Symmetric int8 per channel along `axis` of `shape`. */
function quantI8(a: Float32Array, shape: number[], axis: number): { data: Uint8Array; scales: number[] } {
  const dim = shape[axis]!;
  const inner = shape.slice(axis + 1).reduce((x, y) => x * y, 1);
  const maxAbs = new Array(dim).fill(1e-8);
  a.forEach((v, i) => {
    const c = Math.floor(i / inner) % dim;
    maxAbs[c] = Math.max(maxAbs[c], Math.abs(v));
  });
  const scales = maxAbs.map((m) => m / 127);
  const q = Int8Array.from(a, (v, i) => Math.round(v / scales[Math.floor(i / inner) % dim]));
  return { data: new Uint8Array(q.buffer), scales };
}

export type TinyKind = 'float' | 'uint8' | 'int8';

/**
 * The tiny network as a TFLite model. Activation ranges come from `calib` (real-valued inputs). Quantized
 * models take pixels (uint8, real = (p - 128) / 128); the float one takes real values.
 * `swapOp` replaces the ADD by another builtin (to test unsupported operators).
 */
export function tinyTflite(kind: TinyKind, W: TinyWeights, calib: Float32Array[], o: { swapOp?: BuiltinName; inputShape?: number[] } = {}): Uint8Array {
  const runs = calib.map((x) => tinyForward(x, W));
  const range = (k: 't1' | 't2' | 't3' | 'pooled' | 'logits') => [Math.min(...runs.flatMap((r) => [...r[k]])), Math.max(...runs.flatMap((r) => [...r[k]]))] as const;
  const q = kind === 'float' ? undefined : kind === 'uint8' ? 'u8' : 'i8';
  const actType = kind === 'float' ? TensorType.FLOAT32 : kind === 'uint8' ? TensorType.UINT8 : TensorType.INT8;
  const tensors: FxTensor[] = [];
  const add = (t: FxTensor) => tensors.push(t) - 1;
  const act = (name: string, shape: number[], r?: readonly [number, number]): number => add({ name, shape, type: actType, ...(q && r ? { q: actQ(r[0], r[1], q) } : {}) });
  const inShape = o.inputShape ?? [1, 8, 8, 3];
  const input = add({ name: 'input', shape: inShape, type: kind === 'float' ? TensorType.FLOAT32 : TensorType.UINT8, ...(q ? { q: { scale: [1 / 128], zp: [128] } } : {}) });
  const ops: FxOp[] = [];
  let x = input;
  if (kind === 'int8') {
    x = add({ name: 'input_int8', shape: inShape, type: TensorType.INT8, q: { scale: [1 / 128], zp: [0] } });
    ops.push({ op: 'QUANTIZE', inputs: [input], outputs: [x] });
  }
  const inScale = q ? 1 / 128 : 1;
  const weights = (name: string, w: Float32Array, shape: number[], axis: number, bias: Float32Array, inS: number): [number, number] => {
    if (kind === 'float') {
      return [add({ name, shape, type: TensorType.FLOAT32, data: f32(w) }), add({ name: `${name}_bias`, shape: [bias.length], type: TensorType.FLOAT32, data: f32(bias) })];
    }
    if (kind === 'uint8') {
      const u = quantU8(w);
      const bs = inS * u.scale;
      const wi = add({ name, shape, type: TensorType.UINT8, data: u.data, q: { scale: [u.scale], zp: [u.zp] } });
      const bi = add({ name: `${name}_bias`, shape: [bias.length], type: TensorType.INT32, data: i32(Int32Array.from(bias, (v) => Math.round(v / bs))), q: { scale: [bs], zp: [0] } });
      return [wi, bi];
    }
    const s = quantI8(w, shape, axis);
    const bsc = s.scales.map((v) => v * inS);
    const wi = add({ name, shape, type: TensorType.INT8, data: s.data, q: { scale: s.scales, zp: s.scales.map(() => 0), axis } });
    const bi = add({ name: `${name}_bias`, shape: [bias.length], type: TensorType.INT32, data: i32(Int32Array.from(bias, (v, c) => Math.round(v / bsc[c]!))), q: { scale: bsc, zp: bsc.map(() => 0) } });
    return [wi, bi];
  };
  const scaleOf = (t: number) => tensors[t]!.q?.scale[0] ?? 1;
  const [w1, b1] = weights('conv1', W.w1, [4, 3, 3, 3], 0, W.b1, inScale);
  const t1 = act('conv1_out', [1, 4, 4, 4], [0, 6]);
  ops.push({ op: 'CONV_2D', inputs: [x, w1, b1], outputs: [t1], optionsType: BuiltinOptionsType.Conv2DOptions, options: [[0, 'i8', 0], [1, 'i32', 2], [2, 'i32', 2], [3, 'i8', 3]] });
  const [wd, bd] = weights('dw', W.wd, [1, 3, 3, 4], 3, W.bd, scaleOf(t1));
  const t2 = act('dw_out', [1, 4, 4, 4], [0, 6]);
  ops.push({ op: 'DEPTHWISE_CONV_2D', inputs: [t1, wd, bd], outputs: [t2], optionsType: BuiltinOptionsType.DepthwiseConv2DOptions, options: [[0, 'i8', 0], [1, 'i32', 1], [2, 'i32', 1], [3, 'i32', 1], [4, 'i8', 3]] });
  const t3 = act('add_out', [1, 4, 4, 4], range('t3'));
  ops.push({ op: o.swapOp ?? 'ADD', inputs: [t1, t2], outputs: [t3], optionsType: BuiltinOptionsType.AddOptions, options: [[0, 'i8', 0]] });
  const t4 = add({ ...tensors[t3]!, name: 'pool_out', shape: [1, 1, 1, 4] });
  ops.push({ op: 'AVERAGE_POOL_2D', inputs: [t3], outputs: [t4], optionsType: BuiltinOptionsType.Pool2DOptions, options: [[0, 'i8', 1], [1, 'i32', 1], [2, 'i32', 1], [3, 'i32', 4], [4, 'i32', 4]] });
  const t5 = add({ ...tensors[t4]!, name: 'flat', shape: [1, 4] });
  ops.push({ op: 'RESHAPE', inputs: [t4], outputs: [t5], optionsType: BuiltinOptionsType.ReshapeOptions, options: [[0, 'ints', [1, 4]]] });
  const [wf, bf] = weights('dense', W.wf, [3, 4], 0, W.bf, scaleOf(t5));
  const t6 = act('logits', [1, 3], range('logits'));
  ops.push({ op: 'FULLY_CONNECTED', inputs: [t5, wf, bf], outputs: [t6], optionsType: BuiltinOptionsType.FullyConnectedOptions, options: [[0, 'i8', 0]] });
  const t7 = add({ name: 'probs', shape: [1, 3], type: actType, ...(q ? { q: { scale: [1 / 256], zp: [q === 'u8' ? 0 : -128] } } : {}) });
  ops.push({ op: 'SOFTMAX', inputs: [t6], outputs: [t7], optionsType: BuiltinOptionsType.SoftmaxOptions, options: [[0, 'f32', 1]] });
  return buildTflite({ tensors, ops, inputs: [input], outputs: [t7] });
}

/** Random pixel images [8, 8, 3] (0..255 integers) and their real values (p - 128) / 128. */
export function tinyImages(n: number, seed = 3): { pixels: Float32Array[]; real: Float32Array[] } {
  const r = new Rng(seed);
  const pixels = Array.from({ length: n }, () => Float32Array.from({ length: 8 * 8 * 3 }, () => r.int(256)));
  return { pixels, real: pixels.map((p) => p.map((v) => (v - 128) / 128)) };
}
