/**
 * Static shape inference for the ONNX graphs tlearn builds (the ops its exporter and training graphs use),
 * given the shapes of the graph inputs. Used to build gradient graphs, which need every forward shape.
 */
import type { NodeSpec, OnnxGraph } from './graph.js';

export class ShapeInferenceError extends Error {}

const UNARY = new Set([
  'Relu', 'Clip', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Softmax', 'LogSoftmax', 'Elu', 'Selu', 'Softplus', 'Softsign', 'Exp', 'Log', 'Erf',
  'HardSwish', 'HardSigmoid', 'ThresholdedRelu', 'Identity', 'Cast', 'Neg', 'Sqrt', 'Reciprocal', 'Not', 'Abs', 'LayerNormalization',
]);
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Sum', 'Mean', 'Max', 'Min', 'Where', 'Greater', 'GreaterOrEqual', 'Less', 'LessOrEqual', 'Equal', 'And', 'Or', 'PRelu', 'Pow']);

export function broadcastShapes(shapes: number[][]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const v = s[s.length - rank + i] ?? 1;
      if (v !== 1) {
        if (d !== 1 && d !== v) throw new ShapeInferenceError(`cannot broadcast shapes ${shapes.map((x) => `[${x}]`).join(' and ')}`);
        d = v;
      }
    }
    out.push(d);
  }
  return out;
}

/** An integer-list attribute of a node, if set. */
export function ints(node: NodeSpec, key: string): number[] | undefined {
  const v = node.attrs[key];
  return Array.isArray(v) ? v : undefined;
}

/** An integer attribute of a node, or `dflt`. */
export function int(node: NodeSpec, key: string, dflt: number): number {
  const v = node.attrs[key];
  return typeof v === 'number' ? v : dflt;
}

function windowOut(x: number[], kernel: number[], node: NodeSpec): number[] {
  const spatial = x.slice(2);
  const strides = ints(node, 'strides') ?? spatial.map(() => 1);
  const dil = ints(node, 'dilations') ?? spatial.map(() => 1);
  const autoPad = node.attrs.auto_pad;
  const pads = ints(node, 'pads') ?? spatial.flatMap(() => [0]).concat(spatial.map(() => 0));
  return spatial.map((d, i) => {
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(d / strides[i]!);
    const eff = (kernel[i]! - 1) * dil[i]! + 1;
    return Math.floor((d + pads[i]! + pads[i + spatial.length]! - eff) / strides[i]!) + 1;
  });
}

/** Shapes of every value in the graph. `inputs` gives the graph inputs' shapes (initializers are known). */
export function inferShapes(g: OnnxGraph, inputs: Record<string, number[]>, sameShapeAs: Record<string, string> = {}): Map<string, number[]> {
  const shapes = new Map<string, number[]>(Object.entries(inputs));
  const consts = new Map<string, number[]>();
  for (const init of g.inits) {
    shapes.set(init.name, init.dims);
    consts.set(init.name, Array.from(init.data as ArrayLike<number | bigint>, Number));
  }
  for (const inp of g.inputs) if (!shapes.has(inp.name) && inp.shape?.every((d) => typeof d === 'number')) shapes.set(inp.name, inp.shape as number[]);
  const get = (name: string, node: NodeSpec): number[] => {
    const s = shapes.get(name) ?? (sameShapeAs[name] ? shapes.get(sameShapeAs[name]!) : undefined);
    if (!s) throw new ShapeInferenceError(`node ${node.name} (${node.op}): shape of input '${name}' is unknown`);
    return s;
  };
  const constOf = (name: string, node: NodeSpec): number[] => {
    const c = consts.get(name);
    if (!c) throw new ShapeInferenceError(`node ${node.name} (${node.op}): input '${name}' must be a constant`);
    return c;
  };
  for (const n of g.nodes) {
    const x = n.inputs[0] ? get(n.inputs[0], n) : [];
    let out: number[];
    if (UNARY.has(n.op)) out = [...x];
    else if (BROADCAST.has(n.op)) out = broadcastShapes(n.inputs.filter(Boolean).map((i) => get(i, n)));
    else {
      switch (n.op) {
        case 'Transpose': {
          const perm = ints(n, 'perm') ?? x.map((_, i) => x.length - 1 - i);
          out = perm.map((p) => x[p]!);
          break;
        }
        case 'Conv': {
          const w = get(n.inputs[1]!, n);
          out = [x[0]!, w[0]!, ...windowOut(x, ints(n, 'kernel_shape') ?? w.slice(2), n)];
          break;
        }
        case 'ConvTranspose': {
          const w = get(n.inputs[1]!, n);
          const os = ints(n, 'output_shape');
          const group = int(n, 'group', 1);
          if (os) out = [x[0]!, w[1]! * group, ...os];
          else {
            const k = ints(n, 'kernel_shape') ?? w.slice(2);
            const s = ints(n, 'strides') ?? k.map(() => 1);
            const d = ints(n, 'dilations') ?? k.map(() => 1);
            const p = ints(n, 'pads') ?? [...k.map(() => 0), ...k.map(() => 0)];
            const op = ints(n, 'output_padding') ?? k.map(() => 0);
            out = [x[0]!, w[1]! * group, ...x.slice(2).map((v, i) => s[i]! * (v - 1) + op[i]! + ((k[i]! - 1) * d[i]! + 1) - p[i]! - p[i + k.length]!)];
          }
          break;
        }
        case 'MaxPool':
        case 'AveragePool':
          out = [x[0]!, x[1]!, ...windowOut(x, ints(n, 'kernel_shape')!, n)];
          break;
        case 'GlobalAveragePool':
        case 'GlobalMaxPool':
          out = [x[0]!, x[1]!, ...x.slice(2).map(() => 1)];
          break;
        case 'Flatten': {
          const axis = int(n, 'axis', 1);
          out = [x.slice(0, axis).reduce((a, b) => a * b, 1), x.slice(axis).reduce((a, b) => a * b, 1)];
          break;
        }
        case 'Reshape': {
          const target = constOf(n.inputs[1]!, n).map((d, i) => (d === 0 ? x[i]! : d));
          const known = target.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
          const total = x.reduce((a, b) => a * b, 1);
          out = target.map((d) => (d === -1 ? total / known : d));
          break;
        }
        case 'Expand':
          out = broadcastShapes([x, constOf(n.inputs[1]!, n)]);
          break;
        case 'Gemm': {
          const b = get(n.inputs[1]!, n);
          const m = int(n, 'transA', 0) ? x[1]! : x[0]!;
          const inner = [int(n, 'transA', 0) ? x[0]! : x[1]!, int(n, 'transB', 0) ? b[1]! : b[0]!];
          if (inner[0] !== inner[1]) throw new ShapeInferenceError(`node ${n.name} (Gemm): inner dimensions differ (${inner[0]} and ${inner[1]})`);
          const k = int(n, 'transB', 0) ? b[0]! : b[1]!;
          out = [m, k];
          break;
        }
        case 'MatMul': {
          const b = get(n.inputs[1]!, n);
          if (x.length < 2 || b.length < 2) throw new ShapeInferenceError(`node ${n.name}: MatMul of vectors is not supported`);
          if (x[x.length - 1] !== b[b.length - 2]) throw new ShapeInferenceError(`node ${n.name} (MatMul): inner dimensions differ (${x[x.length - 1]} and ${b[b.length - 2]})`);
          out = [...broadcastShapes([x.slice(0, -2), b.slice(0, -2)]), x[x.length - 2]!, b[b.length - 1]!];
          break;
        }
        case 'Pad': {
          const pads = constOf(n.inputs[1]!, n);
          out = x.map((d, i) => d + pads[i]! + pads[i + x.length]!);
          break;
        }
        case 'Slice': {
          const starts = constOf(n.inputs[1]!, n);
          const ends = constOf(n.inputs[2]!, n);
          const axes = n.inputs[3] ? constOf(n.inputs[3], n) : starts.map((_, i) => i);
          const steps = n.inputs[4] ? constOf(n.inputs[4], n) : starts.map(() => 1);
          out = [...x];
          axes.forEach((a, i) => {
            const ax = a < 0 ? a + x.length : a;
            const d = x[ax]!;
            const clamp = (v: number) => Math.max(0, Math.min(d, v < 0 ? v + d : v));
            if (steps[i] !== 1) throw new ShapeInferenceError(`node ${n.name}: Slice steps other than 1 are not supported`);
            out[ax] = Math.max(0, clamp(ends[i]!) - clamp(starts[i]!));
          });
          break;
        }
        case 'Concat': {
          const axis = int(n, 'axis', 0);
          const parts = n.inputs.map((i) => get(i, n));
          const ax = axis < 0 ? axis + x.length : axis;
          out = [...x];
          out[ax] = parts.reduce((a, p) => a + p[ax]!, 0);
          break;
        }
        case 'Resize': {
          const scales = n.inputs[2] ? consts.get(n.inputs[2]) : undefined;
          const sizes = n.inputs[3] ? consts.get(n.inputs[3]) : undefined;
          if (sizes?.length) out = sizes;
          else if (scales?.length) out = x.map((d, i) => Math.floor(d * scales[i]!));
          else throw new ShapeInferenceError(`node ${n.name}: Resize needs constant scales or sizes`);
          break;
        }
        case 'ReduceSum':
        case 'ReduceMean':
        case 'ReduceMax': {
          const axes = (n.inputs[1] ? constOf(n.inputs[1], n) : ints(n, 'axes')) ?? x.map((_, i) => i);
          const norm = axes.map((a) => (a < 0 ? a + x.length : a));
          const keep = int(n, 'keepdims', 1);
          out = keep ? x.map((d, i) => (norm.includes(i) ? 1 : d)) : x.filter((_, i) => !norm.includes(i));
          break;
        }
        case 'Unsqueeze': {
          const axes = constOf(n.inputs[1]!, n);
          out = [...x];
          for (const a of [...axes].sort((p, q) => p - q)) out.splice(a < 0 ? a + out.length + 1 : a, 0, 1);
          break;
        }
        case 'ScatterElements':
          out = [...x];
          break;
        case 'MaxUnpool':
          out = constOf(n.inputs[2]!, n);
          break;
        default:
          throw new ShapeInferenceError(`shape inference does not know op ${n.op} (node ${n.name})`);
      }
    }
    for (const o of n.outputs) shapes.set(o, out);
  }
  return shapes;
}
