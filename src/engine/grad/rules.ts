/**
 * Reverse-mode gradient rules for the ONNX ops in tlearn's graphs. Each rule gets the forward node, the
 * gradient of its (first) output and which inputs need a gradient, and emits ONNX nodes that compute them.
 * All are checked against numerical gradients in test/grad-rules.test.ts.
 */
import type { NodeSpec } from '../../onnx/graph.js';
import { int, ints } from '../../onnx/shapes.js';
import { GradContext, GradientError } from './context.js';

export type GradRule = (c: GradContext, n: NodeSpec, dY: string, need: boolean[]) => Array<string | undefined>;


/** Conv attributes made explicit (pads as numbers) for a node with known shapes. */
function convGeometry(c: GradContext, n: NodeSpec) {
  const x = c.shape(n.inputs[0]!);
  const w = c.shape(n.inputs[1]!);
  const k = ints(n, 'kernel_shape') ?? w.slice(2);
  const s = ints(n, 'strides') ?? [1, 1];
  const d = ints(n, 'dilations') ?? [1, 1];
  let p = ints(n, 'pads') ?? [0, 0, 0, 0];
  if (n.attrs.auto_pad === 'SAME_UPPER') {
    p = [0, 0, 0, 0];
    for (let i = 0; i < 2; i++) {
      const out = Math.ceil(x[2 + i]! / s[i]!);
      const total = Math.max(0, (out - 1) * s[i]! + (k[i]! - 1) * d[i]! + 1 - x[2 + i]!);
      p[i] = Math.floor(total / 2);
      p[i + 2] = total - p[i]!;
    }
  } else if (n.attrs.auto_pad && n.attrs.auto_pad !== 'NOTSET' && n.attrs.auto_pad !== 'VALID') {
    throw new GradientError(`Conv ${n.name}: auto_pad ${n.attrs.auto_pad} is not supported for training`);
  }
  const group = int(n, 'group', 1);
  const y = c.shape(n.outputs[0]!);
  return { x, w, k, s, d, p, group, y };
}

/** The padded input and, per kernel position (a, b), the input slice that position multiplies. */
function kernelPositionSlices(c: GradContext, n: NodeSpec, input: (padded: string) => string): { slices: Array<{ a: number; b: number; slice: string }> } {
  const { k, s, d, p, y } = convGeometry(c, n);
  const [Ho, Wo] = [y[2]!, y[3]!];
  let xin = n.inputs[0]!;
  if (p.some((v) => v)) xin = c.node('Pad', [xin, c.int64([0, 0, p[0]!, p[1]!, 0, 0, p[2]!, p[3]!])], { mode: 'constant' });
  const src = input(xin);
  const slices: Array<{ a: number; b: number; slice: string }> = [];
  for (let a = 0; a < k[0]!; a++) {
    for (let b = 0; b < k[1]!; b++) {
      const start = [a * d[0]!, b * d[1]!];
      const end = [start[0]! + (Ho - 1) * s[0]! + 1, start[1]! + (Wo - 1) * s[1]! + 1];
      slices.push({ a, b, slice: c.node('Slice', [src, c.int64(start), c.int64(end), c.int64([2, 3]), c.int64(s)]) });
    }
  }
  return { slices };
}

/** dW of a group-1 convolution: one GEMM per kernel position (slices of the padded input). */
function convFilterGrad(c: GradContext, n: NodeSpec, dY: string): string {
  const { x, w, k, s, d, p, y } = convGeometry(c, n);
  const [N, Ci] = [x[0]!, x[1]!];
  const Co = w[0]!;
  const [Ho, Wo] = [y[2]!, y[3]!];
  if (Ci < 8) {
    let xin = n.inputs[0]!;
    if (p.some((v) => v)) xin = c.node('Pad', [xin, c.int64([0, 0, p[0]!, p[1]!, 0, 0, p[2]!, p[3]!])], { mode: 'constant' });
    // few input channels (first layer): a convolution of the input with dY as the kernel is faster
    const xt = c.node('Transpose', [xin], { perm: [1, 0, 2, 3] });
    const dyt = c.node('Transpose', [dY], { perm: [1, 0, 2, 3] });
    const r = c.node('Conv', [xt, dyt], { kernel_shape: [Ho, Wo], strides: d, dilations: s, pads: [0, 0, 0, 0] });
    const sliced = c.node('Slice', [r, c.int64([0, 0]), c.int64([k[0]!, k[1]!]), c.int64([2, 3])]);
    return c.node('Transpose', [sliced], { perm: [1, 0, 2, 3] });
  }
  const dyt = c.node('Transpose', [dY], { perm: [1, 0, 2, 3] });
  const dym = c.node('Reshape', [dyt, c.int64([Co, N * Ho * Wo])]);
  const { slices } = kernelPositionSlices(c, n, (padded) => c.node('Transpose', [padded], { perm: [1, 0, 2, 3] }));
  const cols = slices.map(({ slice }) => c.node('Unsqueeze', [c.node('Gemm', [dym, c.node('Reshape', [slice, c.int64([Ci, N * Ho * Wo])])], { transB: 1 }), c.int64([2])]));
  const cat = cols.length > 1 ? c.node('Concat', cols, { axis: 2 }) : cols[0]!;
  return c.node('Reshape', [cat, c.int64([Co, Ci, k[0]!, k[1]!])]);
}

/** dW of a depthwise convolution (group = input channels): per kernel position, sum of dY * input slice. */
function depthwiseFilterGrad(c: GradContext, n: NodeSpec, dY: string): string {
  const { x, w, k, y } = convGeometry(c, n);
  const [N, C] = [x[0]!, x[1]!];
  const mult = w[0]! / C;
  const [Ho, Wo] = [y[2]!, y[3]!];
  const dy5 = mult === 1 ? dY : c.node('Reshape', [dY, c.int64([N, C, mult, Ho, Wo])]);
  const { slices } = kernelPositionSlices(c, n, (padded) => padded);
  const parts = slices.map(({ slice }) => {
    const sl = mult === 1 ? slice : c.node('Reshape', [slice, c.int64([N, C, 1, Ho, Wo])]);
    const red = c.node('ReduceSum', [c.node('Mul', [dy5, sl]), c.int64(mult === 1 ? [0, 2, 3] : [0, 3, 4])], { keepdims: 0 });
    return c.node('Reshape', [red, c.int64([C * mult, 1])]);
  });
  const cat = parts.length > 1 ? c.node('Concat', parts, { axis: 1 }) : parts[0]!;
  return c.node('Reshape', [cat, c.int64([C * mult, 1, k[0]!, k[1]!])]);
}

const conv: GradRule = (c, n, dY, need) => {
  const g = convGeometry(c, n);
  const out: Array<string | undefined> = [];
  if (need[0]) {
    const output_padding = [0, 1].map((i) => (g.x[2 + i]! + g.p[i]! + g.p[i + 2]! - ((g.k[i]! - 1) * g.d[i]! + 1)) % g.s[i]!);
    out[0] = c.node('ConvTranspose', [dY, n.inputs[1]!], { kernel_shape: g.k, strides: g.s, dilations: g.d, pads: g.p, group: g.group, output_padding });
  }
  if (need[1]) {
    if (g.group === 1) out[1] = convFilterGrad(c, n, dY);
    else if (g.group === g.x[1]) out[1] = depthwiseFilterGrad(c, n, dY);
    else throw new GradientError(`Conv ${n.name}: training grouped convolutions with ${g.group} groups is not supported (only 1 or depthwise)`);
  }
  if (need[2]) out[2] = c.node('ReduceSum', [dY, c.int64([0, 2, 3])], { keepdims: 0 });
  return out;
};

const passThrough: GradRule = (_c, _n, dY) => [dY];

const reshapeBack: GradRule = (c, n, dY) => [c.node('Reshape', [dY, c.int64(c.shape(n.inputs[0]!))])];

const transpose: GradRule = (c, n, dY) => {
  const perm = ints(n, 'perm')!;
  const inv = perm.map((_, i) => perm.indexOf(i));
  return [c.node('Transpose', [dY], { perm: inv })];
};

const relu: GradRule = (c, n, dY) => [c.node('Where', [c.node('Greater', [n.inputs[0]!, c.zeroScalar()]), dY, c.zeroScalar()])];

const clip: GradRule = (c, n, dY) => {
  let cond: string | undefined;
  if (n.inputs[1]) cond = c.node('Greater', [n.inputs[0]!, n.inputs[1]]);
  if (n.inputs[2]) {
    const upper = c.node('Less', [n.inputs[0]!, n.inputs[2]]);
    cond = cond ? c.node('And', [cond, upper]) : upper;
  }
  return [cond ? c.node('Where', [cond, dY, c.zeroScalar()]) : dY];
};

const leakyRelu: GradRule = (c, n, dY) => {
  const alpha = (n.attrs.alpha as { float: number } | undefined)?.float ?? 0.01;
  return [c.node('Where', [c.node('Greater', [n.inputs[0]!, c.zeroScalar()]), dY, c.node('Mul', [dY, c.scalar(alpha)])])];
};

const sigmoid: GradRule = (c, n, dY) => {
  const y = n.outputs[0]!;
  return [c.node('Mul', [dY, c.node('Mul', [y, c.node('Sub', [c.scalar(1), y])])])];
};

const tanh: GradRule = (c, n, dY) => {
  const y = n.outputs[0]!;
  return [c.node('Mul', [dY, c.node('Sub', [c.scalar(1), c.node('Mul', [y, y])])])];
};

const add: GradRule = (c, n, dY, need) => {
  const yShape = c.shape(n.outputs[0]!);
  return n.inputs.map((inp, i) => (need[i] ? c.reduceTo(dY, yShape, c.shape(inp)) : undefined));
};

const sub: GradRule = (c, n, dY, need) => {
  const yShape = c.shape(n.outputs[0]!);
  return [need[0] ? c.reduceTo(dY, yShape, c.shape(n.inputs[0]!)) : undefined, need[1] ? c.reduceTo(c.node('Neg', [dY]), yShape, c.shape(n.inputs[1]!)) : undefined];
};

const mul: GradRule = (c, n, dY, need) => {
  const yShape = c.shape(n.outputs[0]!);
  const [a, b] = n.inputs as [string, string];
  return [need[0] ? c.reduceTo(c.node('Mul', [dY, b]), yShape, c.shape(a)) : undefined, need[1] ? c.reduceTo(c.node('Mul', [dY, a]), yShape, c.shape(b)) : undefined];
};

const div: GradRule = (c, n, dY, need) => {
  if (need[1]) throw new GradientError(`Div ${n.name}: gradient with respect to the divisor is not supported`);
  return [c.reduceTo(c.node('Div', [dY, n.inputs[1]!]), c.shape(n.outputs[0]!), c.shape(n.inputs[0]!))];
};

const gemm: GradRule = (c, n, dY, need) => {
  if (int(n, 'transA', 0)) throw new GradientError(`Gemm ${n.name}: transA is not supported for training`);
  const transB = int(n, 'transB', 0);
  const alpha = (n.attrs.alpha as { float: number } | undefined)?.float ?? 1;
  const beta = (n.attrs.beta as { float: number } | undefined)?.float ?? 1;
  if (alpha !== 1 || beta !== 1) throw new GradientError(`Gemm ${n.name}: alpha/beta other than 1 are not supported for training`);
  const [A, B, C] = n.inputs as [string, string, string | undefined];
  return [
    need[0] ? c.node('Gemm', [dY, B], { transB: transB ? 0 : 1 }) : undefined,
    need[1] ? (transB ? c.node('Gemm', [dY, A], { transA: 1 }) : c.node('Gemm', [A, dY], { transA: 1 })) : undefined,
    need[2] && C ? c.reduceTo(dY, c.shape(n.outputs[0]!), c.shape(C)) : undefined,
  ];
};

const matmul: GradRule = (c, n, dY, need) => {
  const [A, B] = n.inputs as [string, string];
  const a = c.shape(A);
  const b = c.shape(B);
  if (b.length !== 2) throw new GradientError(`MatMul ${n.name}: only a 2-D right operand is supported for training`);
  const [K, Nn] = b as [number, number];
  return [
    need[0] ? c.node('MatMul', [dY, c.node('Transpose', [B], { perm: [1, 0] })]) : undefined,
    need[1] ? c.node('Gemm', [c.node('Reshape', [A, c.int64([-1, K])]), c.node('Reshape', [dY, c.int64([-1, Nn])])], { transA: 1 }) : undefined,
  ].map((v, i) => (i === 0 && v ? c.node('Reshape', [v, c.int64(a)]) : v));
};

const maxPool: GradRule = (c, n, dY) => {
  if (n.outputs.length < 2) n.outputs.push(c.g.unique(`${n.name}:indices`));
  const indices = n.outputs[1]!;
  const x = c.shape(n.inputs[0]!);
  const k = ints(n, 'kernel_shape')!;
  const s = ints(n, 'strides') ?? k.map(() => 1);
  const p = ints(n, 'pads') ?? [0, 0, 0, 0];
  if (k.every((v, i) => v === s[i]) && p.every((v) => v === 0) && !n.attrs.auto_pad) {
    return [c.node('MaxUnpool', [dY, indices, c.int64(x)], { kernel_shape: k, strides: s })];
  }
  const total = x.reduce((a2, b2) => a2 * b2, 1);
  const zeros = c.node('ConstantOfShape', [c.int64([1, total])]);
  const flatI = c.node('Reshape', [indices, c.int64([1, -1])]);
  const flatG = c.node('Reshape', [dY, c.int64([1, -1])]);
  const scattered = c.node('ScatterElements', [zeros, flatI, flatG], { axis: 1, reduction: 'add' });
  return [c.node('Reshape', [scattered, c.int64(x)])];
};

const globalAveragePool: GradRule = (c, n, dY) => {
  const x = c.shape(n.inputs[0]!);
  const area = x.slice(2).reduce((a, b) => a * b, 1);
  return [c.node('Expand', [c.node('Mul', [dY, c.scalar(1 / area)]), c.int64(x)])];
};

const pad: GradRule = (c, n, dY) => {
  const x = c.shape(n.inputs[0]!);
  const padsInit = c.g.initializer(n.inputs[1]!);
  if (!padsInit) throw new GradientError(`Pad ${n.name}: pads must be constant for training`);
  const pads = Array.from(padsInit.data as BigInt64Array, Number);
  const r = x.length;
  const starts = pads.slice(0, r);
  return [c.node('Slice', [dY, c.int64(starts), c.int64(starts.map((st, i) => st + x[i]!)), c.int64(x.map((_, i) => i))])];
};

const concat: GradRule = (c, n, dY, need) => {
  const axis0 = int(n, 'axis', 0);
  const rank = c.shape(n.outputs[0]!).length;
  const axis = axis0 < 0 ? axis0 + rank : axis0;
  let offset = 0;
  return n.inputs.map((inp, i) => {
    const size = c.shape(inp)[axis]!;
    const start = offset;
    offset += size;
    return need[i] ? c.node('Slice', [dY, c.int64([start]), c.int64([start + size]), c.int64([axis])]) : undefined;
  });
};

const softmax: GradRule = (c, n, dY) => {
  const y = n.outputs[0]!;
  const axis = int(n, 'axis', -1);
  const dot = c.node('ReduceSum', [c.node('Mul', [dY, y]), c.int64([axis])], { keepdims: 1 });
  return [c.node('Mul', [y, c.node('Sub', [dY, dot])])];
};

/** ReduceMean (axes as an attribute, opset 17): the gradient spread evenly over the reduced elements. */
const reduceMean: GradRule = (c, n, dY) => {
  const x = c.shape(n.inputs[0]!);
  const axes = (ints(n, 'axes') ?? x.map((_, i) => i)).map((a) => (a < 0 ? a + x.length : a));
  const count = axes.reduce((p, a) => p * x[a]!, 1);
  const kept = x.map((d, i) => (axes.includes(i) ? 1 : d));
  const dy = int(n, 'keepdims', 1) ? dY : c.node('Reshape', [dY, c.int64(kept)]);
  return [c.node('Expand', [c.node('Mul', [dy, c.scalar(1 / count)]), c.int64(x)])];
};

const sqrt: GradRule = (c, n, dY) => [c.node('Div', [c.node('Mul', [dY, c.scalar(0.5)]), n.outputs[0]!])];

const reciprocal: GradRule = (c, n, dY) => {
  const y = n.outputs[0]!;
  return [c.node('Neg', [c.node('Mul', [dY, c.node('Mul', [y, y])])])];
};

const neg: GradRule = (c, _n, dY) => [c.node('Neg', [dY])];

export const GRAD_RULES: Record<string, GradRule> = {
  ReduceMean: reduceMean,
  Sqrt: sqrt,
  Reciprocal: reciprocal,
  Neg: neg,
  Conv: conv,
  Identity: passThrough,
  Reshape: reshapeBack,
  Flatten: reshapeBack,
  Transpose: transpose,
  Relu: relu,
  Clip: clip,
  LeakyRelu: leakyRelu,
  Sigmoid: sigmoid,
  Tanh: tanh,
  Add: add,
  Sum: add,
  Sub: sub,
  Mul: mul,
  Div: div,
  Gemm: gemm,
  MatMul: matmul,
  MaxPool: maxPool,
  GlobalAveragePool: globalAveragePool,
  Pad: pad,
  Concat: concat,
  Softmax: softmax,
};

/** Inputs that never carry a gradient (shapes, pads, indices, clip bounds...). */
export const NON_DIFFERENTIABLE_INPUTS: Record<string, number[]> = {
  Reshape: [1],
  Pad: [1, 2],
  Clip: [1, 2],
  Slice: [1, 2, 3, 4],
  Expand: [1],
};
