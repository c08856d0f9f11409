/**
 * Static post-training int8 quantization of tlearn's float ONNX graphs, in the QDQ format: every quantized
 * activation tensor T becomes QuantizeLinear(T) → DequantizeLinear (uint8, asymmetric, one scale per tensor,
 * from calibration ranges), every quantized convolution's weight an int8 initializer with one scale per output
 * channel (symmetric) behind a DequantizeLinear, and its bias int32 at scale x_scale * w_scale. onnxruntime
 * (graph optimization level 'all') fuses DequantizeLinear → Conv → [Clip/Relu] → QuantizeLinear into its
 * integer QLinearConv kernels, DQ → Add → Q into QLinearAdd, and drops a Clip/Relu whose range the following
 * QuantizeLinear already enforces. What is not quantized stays float (e.g. the head, global pooling).
 *
 * The quantizer works on the decoded ONNX protobuf (proto.ts); it knows the graphs tlearn's converter writes
 * (Transpose at the input, Conv with folded BatchNormalization, Clip for ReLU6, Pad for ZeroPadding2D, Add,
 * global pooling, the head) and leaves any other operator as it is.
 */
import { DataType, decodeModel, encodeModel } from './proto.js';

export interface TensorRange {
  min: number;
  max: number;
}

export interface QuantizeOptions {
  /**
   * Leave the weights of depthwise (grouped) convolutions float (default false: int8 per channel like the rest).
   * Note: onnxruntime (1.2x) quantizes a float-weight Conv that sits between a DequantizeLinear and a
   * QuantizeLinear itself (its WeightBiasQuantization pass, one scale per tensor), so inside a quantized chain
   * such a convolution still runs as QLinearConv; measured, not a way to keep it float.
   */
  skipDepthwise?: boolean;
  /** Names of Conv nodes whose weights stay float (same caveat as skipDepthwise). */
  keepFloat?: string[];
  /**
   * The stem stays float: the leading convolutions (in graph order, from the input) while each has at most this
   * many output channels, with their activations; the first quantized tensor is the input of the convolution
   * after them. onnxruntime's integer kernels are slower than its float ones on so few channels at full
   * resolution (MobileNetV2-0.35's first three convolutions, 16, 16 and 8 channels at 112x112: 150 µs per image
   * float against 307 µs int8, profiled). Default 16; 0 quantizes every convolution.
   */
  floatStem?: number;
  /** Quantize residual Adds (QLinearAdd) when both inputs are quantized (default true). */
  quantizeAdd?: boolean;
  /**
   * Weights in 7 bits (±63) instead of 8: x86 CPUs without VNNI compute uint8 x int8 products with a 16-bit
   * intermediate that can saturate (onnxruntime's own quantizer calls this reduce_range). Default: off.
   */
  reduceRange?: boolean;
}

export class QuantizeError extends Error {}

export const DEFAULT_FLOAT_STEM = 16;

type Node = { input: string[]; output: string[]; name?: string; op_type: string; domain?: string; attribute?: any[] };
type Init = { name: string; dims: number[]; data_type: number; raw_data?: Uint8Array; float_data?: number[]; int64_data?: number[]; int32_data?: number[] };

function attr(n: Node, name: string): any {
  return (n.attribute ?? []).find((a) => a.name === name);
}

function attrInt(n: Node, name: string, dflt: number): number {
  const a = attr(n, name);
  return a?.i !== undefined ? Number(a.i) : dflt;
}

function floatsOf(t: Init): Float32Array {
  if (t.data_type !== DataType.FLOAT) throw new QuantizeError(`initializer ${t.name} is not float32`);
  if (t.raw_data && t.raw_data.length) {
    const copy = new Uint8Array(t.raw_data);
    return new Float32Array(copy.buffer, 0, copy.length / 4);
  }
  return Float32Array.from(t.float_data ?? []);
}

function int64sOf(t: Init): number[] {
  if (t.raw_data && t.raw_data.length) {
    const copy = new Uint8Array(t.raw_data);
    return Array.from(new BigInt64Array(copy.buffer, 0, copy.length / 8), Number);
  }
  return (t.int64_data ?? []).map(Number);
}

function bytesOf(a: Float32Array | Int8Array | Uint8Array | Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

class Graph {
  readonly nodes: Node[];
  readonly inits: Map<string, Init>;
  private names = new Set<string>();

  constructor(readonly model: Record<string, any>) {
    const g = model.graph;
    g.node ??= [];
    g.initializer ??= [];
    this.nodes = g.node;
    this.inits = new Map((g.initializer as Init[]).map((i) => [i.name, i]));
    for (const n of this.nodes) for (const o of [...n.output, ...n.input, n.name ?? '']) this.names.add(o);
    for (const i of this.inits.keys()) this.names.add(i);
    for (const v of [...(g.input ?? []), ...(g.output ?? [])]) this.names.add(v.name);
  }

  unique(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  addInit(nameHint: string, dims: number[], dataType: number, data: Float32Array | Int8Array | Uint8Array | Int32Array): string {
    const name = this.unique(nameHint);
    const t: Init = { name, dims, data_type: dataType, raw_data: new Uint8Array(bytesOf(data)) };
    this.inits.set(name, t);
    this.model.graph.initializer.push(t);
    return name;
  }

  removeInit(name: string): void {
    this.inits.delete(name);
    this.model.graph.initializer = (this.model.graph.initializer as Init[]).filter((i) => i.name !== name);
  }

  consumers(tensor: string): Node[] {
    return this.nodes.filter((n) => n.input.includes(tensor));
  }

  producer(tensor: string): Node | undefined {
    return this.nodes.find((n) => n.output.includes(tensor));
  }

  isGraphOutput(tensor: string): boolean {
    return (this.model.graph.output ?? []).some((o: any) => o.name === tensor);
  }

  insertAfter(anchor: Node | undefined, nodes: Node[]): void {
    const at = anchor ? this.nodes.indexOf(anchor) + 1 : 0;
    this.nodes.splice(at, 0, ...nodes);
  }
}

/**
 * Folds a constant zero Pad on H and W (Keras ZeroPadding2D before a stride-2 convolution) into the Conv
 * that alone consumes it, as asymmetric Conv pads: one operator fewer, and nothing left to run in float
 * between two quantized tensors.
 */
function foldZeroPads(g: Graph): number {
  let folded = 0;
  for (const pad of [...g.nodes]) {
    if (pad.op_type !== 'Pad') continue;
    if ((attr(pad, 'mode')?.s ? new TextDecoder().decode(attr(pad, 'mode').s) : 'constant') !== 'constant') continue;
    if (pad.input[2]) {
      const cv = g.inits.get(pad.input[2]);
      if (!cv || floatsOf(cv).some((v) => v !== 0)) continue;
    }
    const padsInit = g.inits.get(pad.input[1] ?? '');
    if (!padsInit) continue;
    const p = int64sOf(padsInit);
    if (p.length !== 8 || p[0] || p[1] || p[4] || p[5]) continue;
    const users = g.consumers(pad.output[0]!);
    if (users.length !== 1 || users[0]!.op_type !== 'Conv' || users[0]!.input[0] !== pad.output[0] || g.isGraphOutput(pad.output[0]!)) continue;
    const conv = users[0]!;
    if (attr(conv, 'auto_pad') && new TextDecoder().decode(attr(conv, 'auto_pad').s) !== 'NOTSET') continue;
    const cp = attr(conv, 'pads')?.ints?.map(Number) ?? [0, 0, 0, 0];
    const merged = [cp[0] + p[2]!, cp[1] + p[3]!, cp[2] + p[6]!, cp[3] + p[7]!];
    conv.attribute = (conv.attribute ?? []).filter((a) => a.name !== 'pads');
    conv.attribute.push({ name: 'pads', type: 7, ints: merged });
    conv.input[0] = pad.input[0]!;
    g.nodes.splice(g.nodes.indexOf(pad), 1);
    if (!g.consumers(padsInit.name).length) g.removeInit(padsInit.name);
    folded++;
  }
  return folded;
}

/** Where a quantized tensor sits: a Conv's input, or the output of a Conv (after its ReLU/ReLU6, fused). */
export interface QuantPoint {
  tensor: string;
  /** Set when the tensor is a Clip/Relu output whose range is at most [lo, hi]. */
  clip?: { lo: number; hi: number };
}

interface Plan {
  convs: Node[];
  adds: Node[];
  points: Map<string, QuantPoint>;
}

function clipBounds(g: Graph, n: Node): { lo: number; hi: number } | undefined {
  if (n.op_type === 'Relu') return { lo: 0, hi: Infinity };
  if (n.op_type !== 'Clip') return undefined;
  const val = (name: string | undefined, dflt: number) => {
    if (!name) return dflt;
    const t = g.inits.get(name);
    return t ? floatsOf(t)[0]! : NaN;
  };
  const lo = val(n.input[1], -Infinity);
  const hi = val(n.input[2], Infinity);
  return Number.isFinite(lo) || Number.isFinite(hi) ? { lo, hi } : undefined;
}

function isDepthwise(n: Node): boolean {
  return attrInt(n, 'group', 1) > 1;
}

/**
 * The leading convolutions (graph order) while each has at most `maxChannels` output channels; none when that
 * would be every convolution (a model this narrow throughout is quantized whole).
 */
function floatStem(g: Graph, maxChannels: number): Set<Node> {
  const stem = new Set<Node>();
  const convs = g.nodes.filter((n) => n.op_type === 'Conv');
  for (const n of convs) {
    const out = g.inits.get(n.input[1] ?? '')?.dims[0];
    if (out === undefined || out > maxChannels) break;
    stem.add(n);
  }
  return stem.size === convs.length ? new Set() : stem;
}

function plan(g: Graph, o: QuantizeOptions): Plan {
  const keep = new Set(o.keepFloat ?? []);
  const stem = floatStem(g, o.floatStem ?? DEFAULT_FLOAT_STEM);
  const points = new Map<string, QuantPoint>();
  const convs = g.nodes.filter((n) => n.op_type === 'Conv' && !stem.has(n) && g.inits.has(n.input[1] ?? '') && (!n.input[2] || g.inits.has(n.input[2])) && !keep.has(n.name ?? '') && !(o.skipDepthwise && isDepthwise(n)));
  for (const c of convs) {
    points.set(c.input[0]!, points.get(c.input[0]!) ?? { tensor: c.input[0]! });
    const out = c.output[0]!;
    const users = g.consumers(out);
    const act = users.length === 1 && !g.isGraphOutput(out) ? users[0]! : undefined;
    const bounds = act && act.input[0] === out ? clipBounds(g, act) : undefined;
    if (act && bounds && bounds.lo <= 0) points.set(act.output[0]!, { tensor: act.output[0]!, clip: bounds });
    else points.set(out, { tensor: out });
  }
  const adds: Node[] = [];
  if (o.quantizeAdd !== false) {
    for (const n of g.nodes) {
      if (n.op_type !== 'Add' || n.input.length !== 2 || !n.input.every((i) => points.has(i))) continue;
      adds.push(n);
      if (!points.has(n.output[0]!)) points.set(n.output[0]!, { tensor: n.output[0]! });
    }
  }
  return { convs, adds, points };
}

/** The tensors whose ranges calibration must measure, for `bytes` quantized with `o`. */
export function quantizationPoints(bytes: Uint8Array, o: QuantizeOptions = {}): QuantPoint[] {
  const m = decodeModel(bytes);
  const g = new Graph(m);
  foldZeroPads(g);
  return [...plan(g, o).points.values()];
}

/** The float model with every quantization point as an extra graph output (for calibration). */
export function calibrationModel(bytes: Uint8Array, points: QuantPoint[]): { bytes: Uint8Array; outputs: string[] } {
  const m = decodeModel(bytes);
  const g = new Graph(m);
  foldZeroPads(g);
  const outputs: string[] = [];
  for (const p of points) {
    if (g.isGraphOutput(p.tensor)) continue;
    m.graph.output.push({ name: p.tensor, type: { tensor_type: { elem_type: DataType.FLOAT } } });
    outputs.push(p.tensor);
  }
  return { bytes: encodeModel(m), outputs };
}

/** uint8 activation parameters for a float range (always containing 0, so zero padding is exact). */
export function activationParams(r: TensorRange, clip?: { lo: number; hi: number }): { scale: number; zeroPoint: number } {
  let lo = Math.min(0, r.min);
  let hi = Math.max(0, r.max);
  if (clip) {
    lo = Math.max(lo, clip.lo);
    hi = Math.min(hi, clip.hi);
  }
  if (!(hi > lo)) return { scale: 1, zeroPoint: 0 };
  const scale = (hi - lo) / 255;
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-lo / scale)));
  return { scale, zeroPoint };
}

export interface QuantizeReport {
  convs: number;
  depthwise: number;
  adds: number;
  floatConvs: number;
  foldedPads: number;
  activationTensors: number;
}

/** Quantizes `bytes` (a float model from tlearn's converter) with measured `ranges` of its quantization points. */
export function quantizeModel(bytes: Uint8Array, ranges: Map<string, TensorRange>, o: QuantizeOptions = {}): { bytes: Uint8Array; report: QuantizeReport } {
  const m = decodeModel(bytes);
  const g = new Graph(m);
  const foldedPads = foldZeroPads(g);
  const p = plan(g, o);
  const params = new Map<string, { scale: string; zp: string; s: number }>();
  // activations: T → Q → DQ → every consumer of T
  for (const pt of p.points.values()) {
    const r = ranges.get(pt.tensor);
    if (!r || !Number.isFinite(r.min) || !Number.isFinite(r.max)) throw new QuantizeError(`no calibration range for tensor ${pt.tensor}`);
    const { scale, zeroPoint } = activationParams(r, pt.clip);
    const base = pt.tensor.replace(/[^A-Za-z0-9_./:-]/g, '_');
    const sName = g.addInit(`${base}/scale`, [], DataType.FLOAT, new Float32Array([scale]));
    const zName = g.addInit(`${base}/zero_point`, [], DataType.UINT8, new Uint8Array([zeroPoint]));
    const qOut = g.unique(`${base}/quantized`);
    const dqOut = g.unique(`${base}/dequantized`);
    const users = g.consumers(pt.tensor);
    for (const u of users) u.input = u.input.map((i) => (i === pt.tensor ? dqOut : i));
    const q: Node = { name: g.unique(`${base}/QuantizeLinear`), op_type: 'QuantizeLinear', input: [pt.tensor, sName, zName], output: [qOut] };
    const dq: Node = { name: g.unique(`${base}/DequantizeLinear`), op_type: 'DequantizeLinear', input: [qOut, sName, zName], output: [dqOut] };
    g.insertAfter(g.producer(pt.tensor), [q, dq]);
    params.set(pt.tensor, { scale: sName, zp: zName, s: scale });
    params.set(dqOut, { scale: sName, zp: zName, s: scale });
  }
  // weights: int8, symmetric, one scale per output channel; bias int32 at x_scale * w_scale
  const qmax = o.reduceRange ? 63 : 127;
  let depthwise = 0;
  for (const c of p.convs) {
    const x = params.get(c.input[0]!);
    if (!x) throw new QuantizeError(`internal error: the input of ${c.name} is not quantized`);
    const wInit = g.inits.get(c.input[1]!)!;
    const w = floatsOf(wInit);
    const M = wInit.dims[0]!;
    const per = w.length / M;
    const scales = new Float32Array(M);
    const q = new Int8Array(w.length);
    for (let k = 0; k < M; k++) {
      let amax = 0;
      for (let i = k * per; i < (k + 1) * per; i++) amax = Math.max(amax, Math.abs(w[i]!));
      const s = amax > 0 ? amax / qmax : 1;
      scales[k] = s;
      for (let i = k * per; i < (k + 1) * per; i++) q[i] = Math.max(-qmax, Math.min(qmax, Math.round(w[i]! / s)));
    }
    const base = (c.name ?? c.output[0]!).replace(/[^A-Za-z0-9_./:-]/g, '_');
    const wq = g.addInit(`${base}/weight_int8`, wInit.dims, DataType.INT8, q);
    const ws = g.addInit(`${base}/weight_scale`, [M], DataType.FLOAT, scales);
    const wz = g.addInit(`${base}/weight_zero_point`, [M], DataType.INT8, new Int8Array(M));
    const wdq = g.unique(`${base}/weight_dequantized`);
    const newNodes: Node[] = [{ name: g.unique(`${base}/weight_DequantizeLinear`), op_type: 'DequantizeLinear', input: [wq, ws, wz], output: [wdq], attribute: [{ name: 'axis', type: 2, i: 0 }] }];
    const oldW = c.input[1]!;
    c.input[1] = wdq;
    if (c.input[2]) {
      const bInit = g.inits.get(c.input[2])!;
      const b = floatsOf(bInit);
      const bs = new Float32Array(M);
      const bq = new Int32Array(M);
      for (let k = 0; k < M; k++) {
        bs[k] = x.s * scales[k]!;
        bq[k] = Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(b[k]! / bs[k]!)));
      }
      const bqName = g.addInit(`${base}/bias_int32`, [M], DataType.INT32, bq);
      const bsName = g.addInit(`${base}/bias_scale`, [M], DataType.FLOAT, bs);
      const bzName = g.addInit(`${base}/bias_zero_point`, [M], DataType.INT32, new Int32Array(M));
      const bdq = g.unique(`${base}/bias_dequantized`);
      newNodes.push({ name: g.unique(`${base}/bias_DequantizeLinear`), op_type: 'DequantizeLinear', input: [bqName, bsName, bzName], output: [bdq], attribute: [{ name: 'axis', type: 2, i: 0 }] });
      const oldB = c.input[2];
      c.input[2] = bdq;
      if (!g.consumers(oldB).length) g.removeInit(oldB);
    }
    if (!g.consumers(oldW).length) g.removeInit(oldW);
    g.insertAfter(undefined, newNodes);
    if (isDepthwise(c)) depthwise++;
  }
  const floatConvs = g.nodes.filter((n) => n.op_type === 'Conv').length - p.convs.length;
  m.metadata_props = [...(m.metadata_props ?? []), { key: 'tlearn.quantization', value: JSON.stringify({ format: 'QDQ', activations: 'uint8 per-tensor', weights: `int8 per-channel symmetric${o.reduceRange ? ' (7-bit)' : ''}`, skipDepthwise: !!o.skipDepthwise, floatStem: o.floatStem ?? DEFAULT_FLOAT_STEM }) }];
  const report: QuantizeReport = { convs: p.convs.length, depthwise, adds: p.adds.length, floatConvs, foldedPads, activationTensors: p.points.size };
  return { bytes: encodeModel(m), report };
}
