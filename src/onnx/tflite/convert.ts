/**
 * TFLite → ONNX. The ONNX model takes float32 NHWC images (as tlearn's runners feed them) and returns float32
 * rows: the model's output, or features (a pooled layer, found automatically or named with `cutAt`).
 *
 * Three forms of a quantized model:
 * - 'qlinear' (default for quantized models): the integer graph itself, in onnxruntime's integer operators
 *   (QLinearConv for convolutions, depthwise ones and fully-connected layers, com.microsoft QLinearAdd,
 *   QLinearGlobalAveragePool, QLinearAveragePool); what has no integer operator (softmax, reductions over other
 *   axes) runs in float between DequantizeLinear and QuantizeLinear.
 * - 'qdq': float operators between QuantizeLinear/DequantizeLinear pairs, which onnxruntime fuses itself.
 * - 'float': everything dequantized to float32 (weights dequantized once, activations unquantized), to compare.
 * Inside, 4-D tensors are NCHW; the input is transposed once.
 */
import { findFeatureTensor, isQuantizedModel, resolveCut, TfliteConvertError } from '../../backbones/tflite/graph.js';
import type { TfliteModel, TfliteOperator, TfliteTensor } from '../../backbones/tflite/reader.js';
import { Activation, ACTIVATION_NAMES, Padding, TensorType } from '../../backbones/tflite/schema.js';
import { DataType } from '../proto.js';
import { ImportGraph, MS_DOMAIN } from './builder.js';
import { floatValues, permute4, QRANGE, qtypeOf, rawValues, type QType } from './tensors.js';
import { symmetricChannels } from './requantize.js';

import type { TfliteForm } from '../../backbones/tflite/load.js';

export type TfliteOnnxForm = TfliteForm;

export { TfliteConvertError };

export interface TfliteToOnnxOptions {
  /** Default: 'qlinear' for a quantized model, 'float' for a float one. */
  form?: TfliteOnnxForm;
  /** 'model' (default): the model's own output; 'features': a pooled feature layer. */
  output?: 'model' | 'features';
  /** For features: the tensor to cut at (its name, a unique part of it, or an operator's number). */
  cutAt?: string;
  /**
   * 'qlinear': keep weights that have a zero point (uint8 per-tensor models) exactly as the file has them, zero point
   * and all. Default false: they are requantized to symmetric int8 per output channel (`symmetricChannels`: exact
   * in every channel whose values fit int8, 61 of 17,056 channels rescaled in the shared uint8 MobileNetV2), which
   * onnxruntime's fast integer kernels need: about 1.5-1.9x faster (BENCHMARKS.md). int8 per-channel weights (zero
   * point 0) are used as they are either way.
   */
  exactWeights?: boolean;
  /** For 'model': end in probabilities, adding a softmax when the model ends in logits. */
  probabilities?: boolean;
}

export interface TfliteOnnx {
  bytes: Uint8Array;
  form: TfliteOnnxForm;
  /** [height, width] of the input image. */
  inputSize: [number, number];
  inputType: 'uint8' | 'int8' | 'float32';
  /** Values per output row. */
  outputDim: number;
  /** The TFLite tensor the output comes from, and how it was reached, in words. */
  outputTensor: string;
  note: string;
  /** True when the model's weights are quantized. */
  quantized: boolean;
  opTypes: string[];
  /** When weights with a zero point were requantized (not exactWeights): output channels requantized, and how many of them were rescaled (the rest are exact). */
  requantized?: { channels: number; rescaled: number };
}

export const CONVERTED_OPS = [
  'CONV_2D', 'DEPTHWISE_CONV_2D', 'FULLY_CONNECTED', 'ADD', 'AVERAGE_POOL_2D', 'MAX_POOL_2D', 'MEAN', 'RESHAPE', 'SQUEEZE', 'SOFTMAX',
  'PAD', 'RELU', 'RELU6', 'CONCATENATION', 'QUANTIZE', 'DEQUANTIZE',
];

interface QParams {
  scale: number;
  zp: number;
  type: QType;
}

/** An ONNX value standing for a TFLite tensor: quantized (q set) or float; 4-D values are NCHW. */
interface Val {
  name: string;
  q?: QParams;
  /** TFLite (NHWC) shape, batch 1. */
  shape: number[];
}

function product(a: number[]): number {
  return a.reduce((x, y) => x * y, 1);
}

/** TF 'SAME' padding for one spatial axis: [before, after]. */
function samePads(inSize: number, k: number, stride: number, dilation: number): [number, number] {
  const out = Math.ceil(inSize / stride);
  const total = Math.max((out - 1) * stride + (k - 1) * dilation + 1 - inSize, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** True when the tensor is a softmax's output (through quantize, dequantize and reshape steps). */
function endsInSoftmax(m: TfliteModel, t: number): boolean {
  for (;;) {
    const op = m.operators.find((o) => o.outputs.includes(t));
    if (!op) return false;
    if (op.opName === 'SOFTMAX') return true;
    if (!['QUANTIZE', 'DEQUANTIZE', 'RESHAPE', 'SQUEEZE'].includes(op.opName)) return false;
    t = op.inputs[0]!;
  }
}

/** The operators needed to compute `target`, in execution order. */
function needed(m: TfliteModel, target: number): TfliteOperator[] {
  const producer = new Map<number, TfliteOperator>();
  for (const op of m.operators) for (const o of op.outputs) producer.set(o, op);
  const keep = new Set<number>();
  const stack = [target];
  while (stack.length) {
    const t = stack.pop()!;
    const op = producer.get(t);
    if (!op || keep.has(op.index)) continue;
    keep.add(op.index);
    for (const i of op.inputs) if (i >= 0 && !m.tensors[i]!.data) stack.push(i);
  }
  return m.operators.filter((o) => keep.has(o.index));
}

class Converter {
  readonly g = new ImportGraph();
  private readonly vals = new Map<number, Val>();
  private readonly float: boolean;
  private readonly qdq: boolean;
  /** Output channels requantized (weights with a zero point), and of those how many rescaled (not exact). */
  requantized = { channels: 0, rescaled: 0 };

  constructor(
    private readonly m: TfliteModel,
    readonly form: TfliteOnnxForm,
    private readonly finalOutput: number,
    /** Keep weights that have a zero point exactly (the exactWeights option) instead of requantizing them. */
    private readonly exactWeights = false,
  ) {
    this.float = form === 'float';
    this.qdq = form === 'qdq';
  }

  private fail(op: TfliteOperator, why: string): never {
    throw new TfliteConvertError(`${this.m.file}: operator ${op.index} (${op.opName}): ${why}`);
  }

  private t(i: number): TfliteTensor {
    return this.m.tensors[i]!;
  }

  /**
   * A quantized activation's parameters. In 'qlinear' every activation is uint8 (an int8 one shifted by 128, zero
   * point too: the same real values exactly), as onnxruntime's fast x86 kernels take uint8 activations with int8
   * weights; int8 activations take a much slower path there (measured: several times slower than float).
   */
  private qparams(t: TfliteTensor): QParams | undefined {
    const type = qtypeOf(t);
    if (!type || !t.quantization) return undefined;
    const zp = t.quantization.zeroPoint[0] ?? 0;
    if (this.form === 'qlinear' && type === 'i8') return { scale: t.quantization.scale[0]!, zp: zp + 128, type: 'u8' };
    return { scale: t.quantization.scale[0]!, zp, type };
  }

  /** Quantized weights as int8 (uint8 ones shifted by -128, zero points too: the same real values exactly), permuted. */
  private int8Weights(w: TfliteTensor, shape: number[], perm?: number[]): { data: Int8Array; zp: number } {
    const raw = rawValues(w) as Uint8Array | Int8Array;
    const zp = w.quantization!.zeroPoint[0] ?? 0;
    const s8 = raw instanceof Int8Array ? raw : Int8Array.from(raw, (v) => v - 128);
    return { data: perm ? permute4(s8, shape, perm) : s8, zp: raw instanceof Int8Array ? zp : zp - 128 };
  }

  /**
   * QLinearConv's weight inputs (int8 weights, scale, zero point) and bias. Unless `exactWeights` (the default
   * requantizes), weights with a non-zero zero point (uint8 per-tensor models) are requantized to symmetric
   * int8 per output channel (axis `outAxis` of the TFLite tensor; `symmetricChannels`): exact in every channel whose
   * values fit int8, rescaled with its bias in the few that do not. onnxruntime's kernels are about twice as fast
   * without a weight zero point.
   */
  private qweights(op: TfliteOperator, w: TfliteTensor, dims: number[], perm: number[] | undefined, outAxis: number, bi: number | undefined): { w: string; scale: string; zp: string; bias: string[] } {
    const q = w.quantization!;
    if (q.zeroPoint.some((z) => z !== q.zeroPoint[0])) this.fail(op, 'per-channel weight zero points that differ are not supported');
    const b = bi !== undefined && bi >= 0 ? this.t(bi) : undefined;
    if (b && (b.type !== TensorType.INT32 || !b.data)) this.fail(op, `bias of type ${b.typeName}; int32 was expected in a quantized model`);
    if (!this.exactWeights && (q.zeroPoint[0] ?? 0) !== 0) {
      const sym = symmetricChannels(rawValues(w) as Uint8Array | Int8Array, q.zeroPoint[0]!, q.scale, w.shape, outAxis);
      const n = sym.scales.length;
      const bias = b ? [this.g.tensor('b', Int32Array.from(rawValues(b) as Int32Array, (v, c) => (sym.factor[c] === 1 ? v : Math.round(v / sym.factor[c]!))), [n])] : [];
      this.requantized.channels += n;
      this.requantized.rescaled += sym.rescaled;
      return { w: this.g.tensor('w', perm ? permute4(sym.data, w.shape, perm) : sym.data, dims), scale: this.g.constant(sym.scales), zp: this.zp(0, 'i8'), bias };
    }
    const wi = this.int8Weights(w, w.shape, perm);
    const scale = q.scale.length === 1 ? this.scale(q.scale[0]!) : this.g.constant(Float32Array.from(q.scale));
    return { w: this.g.tensor('w', wi.data, dims), scale, zp: this.zp(wi.zp, 'i8'), bias: b ? [this.g.tensor('b', rawValues(b) as Int32Array, [b.shape[0]!])] : [] };
  }

  private scale(s: number): string {
    return this.g.constant(new Float32Array([s]), []);
  }

  private zp(z: number, type: QType): string {
    return this.g.constant(type === 'u8' ? Uint8Array.of(z) : Int8Array.of(z), []);
  }

  private dq(v: Val): string {
    if (!v.q) return v.name;
    return this.g.node('DequantizeLinear', [v.name, this.scale(v.q.scale), this.zp(v.q.zp, v.q.type)], {}, 'dq');
  }

  private quant(name: string, q: QParams): string {
    return this.g.node('QuantizeLinear', [name, this.scale(q.scale), this.zp(q.zp, q.type)], {}, 'q');
  }

  /** The value in the given quantization (requantizing or quantizing when needed). */
  private asQuant(v: Val, q: QParams): string {
    if (v.q && v.q.scale === q.scale && v.q.zp === q.zp && v.q.type === q.type) return v.name;
    return this.quant(this.dq(v), q);
  }

  /** Sets a TFLite tensor's value from a float ONNX value: quantized in 'qlinear', fake-quantized in 'qdq'. */
  private setFloat(ti: number, name: string): void {
    const t = this.t(ti);
    const q = this.qparams(t);
    if (this.float || !q || ti === this.finalOutput) return void this.vals.set(ti, { name, shape: t.shape });
    const qn = this.quant(name, q);
    if (this.qdq) this.vals.set(ti, { name: this.dq({ name: qn, q, shape: t.shape }), shape: t.shape });
    else this.vals.set(ti, { name: qn, q, shape: t.shape });
  }

  private setQuant(ti: number, name: string, q: QParams): void {
    this.vals.set(ti, { name, q, shape: this.t(ti).shape });
  }

  val(i: number, op: TfliteOperator): Val {
    const v = this.vals.get(i);
    if (v) return v;
    const t = this.t(i);
    if (t.data) return { name: this.constFloat(t, t.shape), shape: t.shape };
    return this.fail(op, `its input ${t.name} is not computed (the graph is not in execution order)`);
  }

  /** A constant as a float value (NCHW for 4-D): dequantized, or DequantizeLinear of the integers in 'qdq'. */
  private constFloat(t: TfliteTensor, shape: number[], perm?: number[], dims?: number[]): string {
    const outDims = dims ?? (perm ? perm.map((p) => shape[p]!) : shape.length === 4 ? [0, 3, 1, 2].map((p) => shape[p]!) : shape);
    const p = perm ?? (shape.length === 4 ? [0, 3, 1, 2] : undefined);
    if (this.qdq && t.quantization && (qtypeOf(t) || t.type === TensorType.INT32)) {
      const raw = rawValues(t) as Uint8Array | Int8Array | Int32Array;
      const data = p ? permute4(raw, shape, p) : raw;
      const q = t.quantization;
      const name = this.g.tensor('w', data, outDims);
      const axisOut = p ? p.indexOf(q.axis) : q.axis;
      const zpArr = (z: number[]) => (raw instanceof Uint8Array ? Uint8Array.from(z) : raw instanceof Int8Array ? Int8Array.from(z) : Int32Array.from(z));
      if (q.scale.length === 1) return this.g.node('DequantizeLinear', [name, this.scale(q.scale[0]!), this.g.constant(zpArr([q.zeroPoint[0] ?? 0]), [])], {}, 'dqw');
      return this.g.node('DequantizeLinear', [name, this.g.constant(Float32Array.from(q.scale)), this.g.constant(zpArr(q.zeroPoint))], { axis: axisOut }, 'dqw');
    }
    const f = floatValues(t);
    return this.g.tensor('w', p ? permute4(f, shape, p) : f, outDims);
  }

  /** A bias: the TFLite int32 values dequantized with their own scales (input scale x weight scale). */
  private bias(op: TfliteOperator, i: number | undefined): string | undefined {
    if (i === undefined || i < 0) return undefined;
    const t = this.t(i);
    if (!t.data) this.fail(op, 'a computed bias is not supported');
    return this.constFloat(t, t.shape);
  }

  private activation(op: TfliteOperator, name: string, act: number): string {
    if (act === Activation.NONE) return name;
    if (act === Activation.RELU) return this.g.node('Relu', [name], {}, 'relu');
    if (act === Activation.RELU6) return this.g.node('Clip', [name, this.scale(0), this.scale(6)], {}, 'relu6');
    if (act === Activation.RELU_N1_TO_1) return this.g.node('Clip', [name, this.scale(-1), this.scale(1)], {}, 'relu1');
    return this.fail(op, `fused activation ${ACTIVATION_NAMES[act] ?? act} is not supported`);
  }

  /** A fused activation on a quantized value: a Clip in the integer domain where the range does not already saturate. */
  private qactivation(op: TfliteOperator, name: string, q: QParams, act: number): string {
    if (act === Activation.NONE) return name;
    const bounds: Record<number, [number, number]> = { [Activation.RELU]: [0, Infinity], [Activation.RELU6]: [0, 6], [Activation.RELU_N1_TO_1]: [-1, 1] };
    const b = bounds[act];
    if (!b) this.fail(op, `fused activation ${ACTIVATION_NAMES[act] ?? act} is not supported`);
    const [tmin, tmax] = QRANGE[q.type];
    const lo = Math.max(tmin, q.zp + Math.round(b[0] / q.scale));
    const hi = Number.isFinite(b[1]) ? Math.min(tmax, q.zp + Math.round(b[1] / q.scale)) : tmax;
    if (lo <= tmin && hi >= tmax) return name;
    return this.g.node('Clip', [name, this.zp(lo, q.type), this.zp(hi, q.type)], {}, 'qclip');
  }

  private convPads(op: TfliteOperator, inShape: number[], kh: number, kw: number): number[] {
    const o = op.options;
    if (o.padding === Padding.VALID) return [0, 0, 0, 0];
    const [t, b] = samePads(inShape[1]!, kh, o.stride_h as number, (o.dilation_h_factor as number) || 1);
    const [l, r] = samePads(inShape[2]!, kw, o.stride_w as number, (o.dilation_w_factor as number) || 1);
    return [t, l, b, r];
  }

  private conv(op: TfliteOperator, depthwise: boolean): void {
    const [xi, wi, bi] = op.inputs as [number, number, number | undefined];
    const x = this.val(xi, op);
    const w = this.t(wi);
    if (!w.data) this.fail(op, 'computed (non-constant) weights are not supported');
    if (x.shape.length !== 4) this.fail(op, `input of rank ${x.shape.length}; a 4-D image tensor was expected`);
    const o = op.options;
    const [kh, kw] = [w.shape[1]!, w.shape[2]!];
    const perm = depthwise ? [3, 0, 1, 2] : [0, 3, 1, 2];
    const attrs = {
      kernel_shape: [kh, kw],
      strides: [o.stride_h as number, o.stride_w as number],
      dilations: [(o.dilation_h_factor as number) || 1, (o.dilation_w_factor as number) || 1],
      pads: this.convPads(op, x.shape, kh, kw),
      group: depthwise ? x.shape[3]! : 1,
    };
    const act = o.fused_activation_function as number;
    const out = op.outputs[0]!;
    const yq = this.qparams(this.t(out));
    const wq = qtypeOf(w);
    if (this.form === 'qlinear' && x.q && yq && wq && w.quantization && out !== this.finalOutput) {
      const qw = this.qweights(op, w, perm.map((p) => w.shape[p]!), perm, depthwise ? 3 : 0, bi);
      const inputs = [x.name, this.scale(x.q.scale), this.zp(x.q.zp, x.q.type), qw.w, qw.scale, qw.zp, this.scale(yq.scale), this.zp(yq.zp, yq.type), ...qw.bias];
      const y = this.g.node('QLinearConv', inputs, attrs, depthwise ? 'qdwconv' : 'qconv');
      return this.setQuant(out, this.qactivation(op, y, yq, act), yq);
    }
    const inputs = [this.dq(x), this.constFloat(w, w.shape, perm)];
    const b = this.bias(op, bi);
    if (b) inputs.push(b);
    this.setFloat(out, this.activation(op, this.g.node('Conv', inputs, attrs, depthwise ? 'dwconv' : 'conv'), act));
  }

  private fullyConnected(op: TfliteOperator): void {
    const [xi, wi, bi] = op.inputs as [number, number, number | undefined];
    const x = this.val(xi, op);
    const w = this.t(wi);
    if (!w.data || w.shape.length !== 2) this.fail(op, 'weights must be a constant matrix');
    const [units, k] = w.shape as [number, number];
    if (product(x.shape.slice(1)) !== k) this.fail(op, `input [${x.shape}] does not match weights [${w.shape}]`);
    // Rows in TFLite's (NHWC) order; for a 1x1 map NCHW flattens the same way.
    const flat = (name: string): string => {
      const nhwc = x.shape.length === 4 && (x.shape[1] !== 1 || x.shape[2] !== 1) ? this.g.node('Transpose', [name], { perm: [0, 2, 3, 1] }, 'nhwc') : name;
      return this.g.node('Reshape', [nhwc, this.g.int64([0, k])], {}, 'flatten');
    };
    const out = op.outputs[0]!;
    const yq = this.qparams(this.t(out));
    const wq = qtypeOf(w);
    const act = op.options.fused_activation_function as number;
    if (this.form === 'qlinear' && x.q && yq && wq && w.quantization && out !== this.finalOutput) {
      const x4 = this.g.node('Reshape', [flat(x.name), this.g.int64([0, k, 1, 1])], {}, 'as_map');
      const qw = this.qweights(op, w, [units, k, 1, 1], undefined, 0, bi);
      const inputs = [x4, this.scale(x.q.scale), this.zp(x.q.zp, x.q.type), qw.w, qw.scale, qw.zp, this.scale(yq.scale), this.zp(yq.zp, yq.type), ...qw.bias];
      const y4 = this.g.node('QLinearConv', inputs, {}, 'qdense');
      const y = this.g.node('Reshape', [y4, this.g.int64(this.t(out).shape.length === 4 ? [0, units, 1, 1] : [0, units])], {}, 'dense_out');
      return this.setQuant(out, this.qactivation(op, y, yq, act), yq);
    }
    const inputs = [flat(this.dq(x)), this.constFloat(w, w.shape, undefined, [units, k])];
    const b = this.bias(op, bi);
    if (b) inputs.push(b);
    let y = this.g.node('Gemm', inputs, { transB: 1 }, 'dense');
    if (this.t(out).shape.length === 4) y = this.g.node('Reshape', [y, this.g.int64([0, units, 1, 1])], {}, 'dense_out');
    this.setFloat(out, this.activation(op, y, act));
  }

  private add(op: TfliteOperator): void {
    const [a, b] = op.inputs.map((i) => this.val(i, op)) as [Val, Val];
    const out = op.outputs[0]!;
    const yq = this.qparams(this.t(out));
    const act = op.options.fused_activation_function as number;
    if (this.form === 'qlinear' && a.q && b.q && yq && out !== this.finalOutput && a.q.type === b.q.type && b.q.type === yq.type) {
      const y = this.g.node('QLinearAdd', [a.name, this.scale(a.q.scale), this.zp(a.q.zp, a.q.type), b.name, this.scale(b.q.scale), this.zp(b.q.zp, b.q.type), this.scale(yq.scale), this.zp(yq.zp, yq.type)], {}, 'qadd', MS_DOMAIN);
      return this.setQuant(out, this.qactivation(op, y, yq, act), yq);
    }
    this.setFloat(out, this.activation(op, this.g.node('Add', [this.dq(a), this.dq(b)], {}, 'add'), act));
  }

  /** Average pooling of a whole map, as one operator; `keep`: [N, C, 1, 1], else [N, C]. */
  private globalPool(x: Val, out: number, keep: boolean): void {
    const yq = this.qparams(this.t(out));
    const flat = (name: string) => (keep ? name : this.g.node('Reshape', [name, this.g.int64([0, x.shape[3]!])], {}, 'squeeze'));
    if (this.form === 'qlinear' && x.q && yq && out !== this.finalOutput && x.q.type === yq.type) {
      const y = this.g.node('QLinearGlobalAveragePool', [x.name, this.scale(x.q.scale), this.zp(x.q.zp, x.q.type), this.scale(yq.scale), this.zp(yq.zp, yq.type)], { channels_last: 0 }, 'qgap', MS_DOMAIN);
      return this.setQuant(out, flat(y), yq);
    }
    this.setFloat(out, flat(this.g.node('GlobalAveragePool', [this.dq(x)], {}, 'gap')));
  }

  private pool(op: TfliteOperator, kind: 'avg' | 'max'): void {
    const x = this.val(op.inputs[0]!, op);
    const o = op.options;
    const [kh, kw] = [o.filter_height as number, o.filter_width as number];
    const out = op.outputs[0]!;
    const act = o.fused_activation_function as number;
    if (kind === 'avg' && kh === x.shape[1] && kw === x.shape[2] && act === Activation.NONE) return this.globalPool(x, out, true);
    const pads = o.padding === Padding.VALID ? [0, 0, 0, 0] : (() => {
      const [t, b] = samePads(x.shape[1]!, kh, o.stride_h as number, 1);
      const [l, r] = samePads(x.shape[2]!, kw, o.stride_w as number, 1);
      return [t, l, b, r];
    })();
    const attrs: Record<string, number | number[]> = { kernel_shape: [kh, kw], strides: [o.stride_h as number, o.stride_w as number], pads };
    if (kind === 'avg') attrs.count_include_pad = 0;
    const yq = this.qparams(this.t(out));
    if (this.form === 'qlinear' && x.q && yq && out !== this.finalOutput && x.q.type === yq.type) {
      const y =
        kind === 'avg'
          ? this.g.node('QLinearAveragePool', [x.name, this.scale(x.q.scale), this.zp(x.q.zp, x.q.type), this.scale(yq.scale), this.zp(yq.zp, yq.type)], attrs, 'qavgpool', MS_DOMAIN)
          : this.g.node('MaxPool', [this.asQuant(x, yq)], attrs, 'maxpool');
      return this.setQuant(out, this.qactivation(op, y, yq, act), yq);
    }
    this.setFloat(out, this.activation(op, this.g.node(kind === 'avg' ? 'AveragePool' : 'MaxPool', [this.dq(x)], attrs, `${kind}pool`), act));
  }

  private constInts(op: TfliteOperator, i: number | undefined, what: string): number[] {
    const t = i !== undefined && i >= 0 ? this.t(i) : undefined;
    if (!t?.data) this.fail(op, `${what} must be a constant`);
    return Array.from(rawValues(t), Number);
  }

  private mean(op: TfliteOperator): void {
    const x = this.val(op.inputs[0]!, op);
    const axes = this.constInts(op, op.inputs[1], 'the axes').map((a) => (a < 0 ? a + x.shape.length : a));
    const keep = op.options.keep_dims as boolean;
    const out = op.outputs[0]!;
    if (x.shape.length === 4 && axes.length === 2 && axes.includes(1) && axes.includes(2)) return this.globalPool(x, out, keep);
    const onnxAxes = x.shape.length === 4 ? axes.map((a) => [0, 2, 3, 1][a]!) : axes;
    let y = this.g.node('ReduceMean', [this.dq(x)], { axes: onnxAxes, keepdims: keep ? 1 : 0 }, 'mean');
    if (x.shape.length === 4 && !keep && this.t(out).shape.length === 4) this.fail(op, 'unexpected output rank');
    if (x.shape.length === 4 && !keep) {
      // NCHW with some axes removed: put the remaining axes in TFLite's order
      const remaining = [0, 1, 2, 3].filter((a) => !axes.includes(a));
      const onnxOrder = [0, 3, 1, 2].filter((a) => remaining.includes(a));
      const perm = remaining.map((a) => onnxOrder.indexOf(a));
      if (perm.some((p, i) => p !== i)) y = this.g.node('Transpose', [y], { perm }, 'mean_order');
    }
    this.setFloat(out, y);
  }

  /** RESHAPE and SQUEEZE: in TFLite's (NHWC) element order; integer values pass through as they are. */
  private reshape(op: TfliteOperator): void {
    const x = this.val(op.inputs[0]!, op);
    const out = op.outputs[0]!;
    const target = this.t(out).shape;
    if (!target.length) this.fail(op, 'the output shape is unknown');
    let name = x.name;
    const simple = x.shape.length !== 4 || (x.shape[1] === 1 && x.shape[2] === 1);
    if (!simple) name = this.g.node('Transpose', [name], { perm: [0, 2, 3, 1] }, 'nhwc');
    if (target.length === 4 && !(target[1] === 1 && target[2] === 1)) {
      name = this.g.node('Reshape', [name, this.g.int64([0, ...target.slice(1)])], {}, 'reshape');
      name = this.g.node('Transpose', [name], { perm: [0, 3, 1, 2] }, 'nchw');
    } else {
      const shape = target.length === 4 ? [0, target[3]!, 1, 1] : [0, ...target.slice(1)];
      name = this.g.node('Reshape', [name, this.g.int64(shape)], {}, 'reshape');
    }
    const yq = this.qparams(this.t(out));
    if (x.q && yq && !this.float && out !== this.finalOutput) return this.setQuant(out, this.asQuant({ ...x, name }, yq), yq);
    this.setFloat(out, this.dq({ ...x, name }));
  }

  private softmax(op: TfliteOperator): void {
    const x = this.val(op.inputs[0]!, op);
    const beta = (op.options.beta as number) || 1;
    let f = this.dq(x);
    if (beta !== 1) f = this.g.node('Mul', [f, this.scale(beta)], {}, 'beta');
    const axis = x.shape.length === 4 ? 1 : -1;
    const y = this.g.node('Softmax', [f], { axis }, 'softmax');
    // probabilities stay float: quantizing them only loses resolution
    this.vals.set(op.outputs[0]!, { name: y, shape: this.t(op.outputs[0]!).shape });
  }

  private pad(op: TfliteOperator): void {
    const x = this.val(op.inputs[0]!, op);
    const p = this.constInts(op, op.inputs[1], 'the paddings');
    const rank = x.shape.length;
    const order = rank === 4 ? [0, 3, 1, 2] : [...Array(rank).keys()];
    const pads = [...order.map((a) => p[2 * a]!), ...order.map((a) => p[2 * a + 1]!)];
    const out = op.outputs[0]!;
    const yq = this.qparams(this.t(out));
    if (this.form === 'qlinear' && x.q && yq && out !== this.finalOutput) {
      const xin = this.asQuant(x, yq);
      return this.setQuant(out, this.g.node('Pad', [xin, this.g.int64(pads), this.zp(yq.zp, yq.type)], { mode: 'constant' }, 'pad'), yq);
    }
    this.setFloat(out, this.g.node('Pad', [this.dq(x), this.g.int64(pads), this.scale(0)], { mode: 'constant' }, 'pad'));
  }

  private concat(op: TfliteOperator): void {
    const xs = op.inputs.map((i) => this.val(i, op));
    let axis = op.options.axis as number;
    const rank = xs[0]!.shape.length;
    if (axis < 0) axis += rank;
    const onnxAxis = rank === 4 ? [0, 2, 3, 1][axis]! : axis;
    const y = this.g.node('Concat', xs.map((v) => this.dq(v)), { axis: onnxAxis }, 'concat');
    this.setFloat(op.outputs[0]!, this.activation(op, y, op.options.fused_activation_function as number));
  }

  private quantizeOp(op: TfliteOperator): void {
    const x = this.val(op.inputs[0]!, op);
    const out = op.outputs[0]!;
    const yq = this.qparams(this.t(out));
    if (this.form === 'qlinear' && yq && out !== this.finalOutput) return this.setQuant(out, this.asQuant(x, yq), yq);
    this.setFloat(out, this.dq(x));
  }

  convertOp(op: TfliteOperator): void {
    switch (op.opName) {
      case 'CONV_2D':
        return this.conv(op, false);
      case 'DEPTHWISE_CONV_2D':
        return this.conv(op, true);
      case 'FULLY_CONNECTED':
        return this.fullyConnected(op);
      case 'ADD':
        return this.add(op);
      case 'AVERAGE_POOL_2D':
        return this.pool(op, 'avg');
      case 'MAX_POOL_2D':
        return this.pool(op, 'max');
      case 'MEAN':
        return this.mean(op);
      case 'RESHAPE':
      case 'SQUEEZE':
        return this.reshape(op);
      case 'SOFTMAX':
        return this.softmax(op);
      case 'PAD':
        return this.pad(op);
      case 'CONCATENATION':
        return this.concat(op);
      case 'RELU':
      case 'RELU6': {
        const x = this.val(op.inputs[0]!, op);
        return this.setFloat(op.outputs[0]!, this.activation(op, this.dq(x), op.opName === 'RELU' ? Activation.RELU : Activation.RELU6));
      }
      case 'QUANTIZE':
      case 'DEQUANTIZE':
        return this.quantizeOp(op);
      default:
        throw new TfliteConvertError(
          `${this.m.file}: operator ${op.index} is ${op.opName}, which tlearn's TFLite converter does not convert (it converts ${CONVERTED_OPS.join(', ')})`,
        );
    }
  }

  input(t: TfliteTensor, ti: number): void {
    const [, h, w, c] = t.shape as [number, number, number, number];
    this.g.inputs.push({ name: 'input', shape: ['N', h, w, c], elemType: DataType.FLOAT });
    const x = this.g.node('Transpose', ['input'], { perm: [0, 3, 1, 2] }, 'nchw');
    const q = this.qparams(t);
    if (!q) return void this.vals.set(ti, { name: x, shape: t.shape });
    // pixels 0..255 are the uint8 input's values; an int8 input takes them shifted by -128 (in 'qlinear', where
    // activations are uint8, that shift is undone: the pixels themselves)
    const pixels: QParams = { scale: 1, zp: q.type === 'u8' ? 0 : -128, type: q.type };
    if (this.form === 'qlinear') return void this.vals.set(ti, { name: this.quant(x, pixels), q, shape: t.shape });
    const tq = qtypeOf(t)!;
    const zp0 = t.quantization!.zeroPoint[0] ?? 0;
    const real = this.g.node('Mul', [this.g.node('Sub', [x, this.scale(tq === 'u8' ? zp0 : zp0 + 128)], {}, 'center'), this.scale(q.scale)], {}, 'scale');
    if (this.qdq) return void this.vals.set(ti, { name: this.dq({ name: this.quant(real, q), q, shape: t.shape }), shape: t.shape });
    this.vals.set(ti, { name: real, shape: t.shape });
  }

  /** The output value as float [N, dim]: pooled when it is a map, flattened in TFLite's order. */
  output(ti: number, pool: boolean, softmax = false): number {
    const v = this.vals.get(ti)!;
    let name = this.dq(v);
    let dim = product(v.shape.slice(1));
    if (v.shape.length === 4) {
      if (pool && (v.shape[1]! > 1 || v.shape[2]! > 1)) {
        name = this.g.node('GlobalAveragePool', [name], {}, 'feature_pool');
        dim = v.shape[3]!;
      } else if (v.shape[1]! > 1 || v.shape[2]! > 1) name = this.g.node('Transpose', [name], { perm: [0, 2, 3, 1] }, 'nhwc');
    }
    name = this.g.node('Reshape', [name, this.g.int64([0, dim])], {}, softmax ? 'logits' : 'output');
    if (softmax) name = this.g.node('Softmax', [name], { axis: 1 }, 'probabilities');
    this.g.outputs.push({ name, shape: ['N', dim], elemType: DataType.FLOAT });
    return dim;
  }
}

/** Converts a parsed TFLite model to ONNX (see the file comment for the forms and outputs). */
export function tfliteToOnnx(m: TfliteModel, opts: TfliteToOnnxOptions = {}): TfliteOnnx {
  const file = m.file;
  if (m.inputs.length !== 1) throw new TfliteConvertError(`${file}: the model has ${m.inputs.length} inputs; an image classifier has one`);
  const inT = m.tensors[m.inputs[0]!]!;
  if (inT.shape.length !== 4 || inT.shape[3] !== 3) {
    throw new TfliteConvertError(`${file}: not an image model: its input ${inT.name} has shape [${inT.shape}]; tlearn needs [1, height, width, 3] (RGB images)`);
  }
  if (![TensorType.FLOAT32, TensorType.UINT8, TensorType.INT8].includes(inT.type as 0 | 3 | 9)) throw new TfliteConvertError(`${file}: input of type ${inT.typeName}; tlearn feeds float32, uint8 or int8 images`);
  const quantized = isQuantizedModel(m);
  const form = opts.form ?? (quantized ? 'qlinear' : 'float');
  let target: number;
  let note: string;
  if (opts.output === 'features') {
    if (opts.cutAt) {
      target = resolveCut(m, opts.cutAt);
      note = `cut at ${m.tensors[target]!.name}`;
    } else {
      const found = findFeatureTensor(m);
      if (!found) throw new TfliteConvertError(`${file}: found no global pooling layer to take features from; pass --cut-at <tensor name or operator number>`);
      target = found.tensor;
      note = `features from ${found.note}`;
    }
  } else {
    if (m.outputs.length !== 1) throw new TfliteConvertError(`${file}: the model has ${m.outputs.length} outputs; a classifier has one`);
    target = m.outputs[0]!;
    note = 'the model with its own output';
  }
  const c = new Converter(m, form, target, !!opts.exactWeights);
  c.input(inT, m.inputs[0]!);
  const ops = needed(m, target);
  if (!ops.length && target !== m.inputs[0]) throw new TfliteConvertError(`${file}: nothing computes tensor ${m.tensors[target]!.name}`);
  for (const op of ops) c.convertOp(op);
  const outputDim = c.output(target, opts.output === 'features', opts.output !== 'features' && !!opts.probabilities && !endsInSoftmax(m, target));
  c.g.metadata.source = `tflite:${file.split('/').pop()}`;
  const bytes = c.g.toBytes('tflite_import', `${file}: ${note}; ${form}`);
  return {
    bytes,
    form,
    inputSize: [inT.shape[1]!, inT.shape[2]!],
    inputType: inT.type === TensorType.UINT8 ? 'uint8' : inT.type === TensorType.INT8 ? 'int8' : 'float32',
    outputDim,
    outputTensor: m.tensors[target]!.name,
    note,
    quantized,
    opTypes: c.g.opTypes,
    ...(c.requantized.channels ? { requantized: { ...c.requantized } } : {}),
  };
}
