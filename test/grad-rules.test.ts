/**
 * Every gradient rule checked against central finite differences, on random shapes, with strides 1 and 2 and
 * 'valid'/'same' padding where the op has them. L = sum(y * R) for a fixed random R, so dL/dy = R.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { OnnxGraph } from '../src/onnx/graph.js';
import { inferShapes } from '../src/onnx/shapes.js';
import { GradContext } from '../src/engine/grad/context.js';
import { backprop } from '../src/engine/grad/builder.js';
import { Rng } from '../src/util/rng.js';

type Build = (g: OnnxGraph, x: Record<string, string>) => string;

interface Spec {
  inputs: Record<string, number[]>;
  /** Inputs to differentiate (default all). */
  wrt?: string[];
  /** Values an input must stay away from (kinks), e.g. 0 for ReLU. */
  awayFrom?: number[];
  distinct?: boolean;
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

function randomData(shape: number[], rng: Rng, spec: Spec): Float32Array {
  const n = size(shape);
  if (spec.distinct) {
    // well-separated distinct values, so that a small step never changes which element is the maximum
    const vals = rng.shuffle(Array.from({ length: n }, (_, i) => (i - n / 2) * 0.05));
    return Float32Array.from(vals);
  }
  return Float32Array.from({ length: n }, () => {
    let v = rng.next() * 2 - 1;
    for (const k of spec.awayFrom ?? []) if (Math.abs(v - k) < 0.1) v = k + (v < k ? -0.1 : 0.1) - (v - k);
    return v;
  });
}

async function gradCheck(spec: Spec, build: Build, seed = 1): Promise<void> {
  const rng = new Rng(seed);
  const g = new OnnxGraph();
  const names: Record<string, string> = {};
  for (const [k, shape] of Object.entries(spec.inputs)) names[k] = g.addInput(k, shape);
  const y = build(g, names);
  const forward = [...g.nodes];
  const shapes = inferShapes(g, spec.inputs);
  const yShape = shapes.get(y)!;
  const R = g.floatTensor('R', randomData(yShape, rng, { inputs: {} }), yShape);
  const L = g.node('ReduceSum', [g.node('Mul', [y, R]), g.int64Tensor('all', yShape.map((_, i) => i))], { keepdims: 0 });
  g.node('Identity', [L], {}, 'L');
  g.addOutput('L', []);
  const wrt = spec.wrt ?? Object.keys(spec.inputs);
  const c = new GradContext(g, shapes);
  const grads = backprop(c, forward, wrt, new Map([[y, R]]));
  for (const w of wrt) {
    const gn = grads.get(w);
    expect(gn, `no gradient for ${w}`).toBeDefined();
    g.node('Identity', [gn!], {}, `d_${w}`);
    g.addOutput(`d_${w}`, spec.inputs[w]);
  }
  const session = await ort.InferenceSession.create(g.toBytes(), { intraOpNumThreads: 1 });
  const data: Record<string, Float32Array> = {};
  for (const [k, shape] of Object.entries(spec.inputs)) data[k] = randomData(shape, rng, spec);
  const run = async (override?: [string, number, number]) => {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [k, shape] of Object.entries(spec.inputs)) {
      const d = new Float32Array(data[k]!);
      if (override && override[0] === k) d[override[1]] += override[2];
      feeds[k] = new ort.Tensor('float32', d, shape);
    }
    return session.run(feeds);
  };
  const base = await run();
  const eps = 1e-2;
  for (const w of wrt) {
    const analytic = base[`d_${w}`]!.data as Float32Array;
    expect(analytic.length).toBe(size(spec.inputs[w]!));
    const n = analytic.length;
    const picks = n <= 24 ? Array.from({ length: n }, (_, i) => i) : Array.from({ length: 24 }, () => rng.int(n));
    for (const i of picks) {
      const plus = ((await run([w, i, eps])).L!.data as Float32Array)[0]!;
      const minus = ((await run([w, i, -eps])).L!.data as Float32Array)[0]!;
      const numeric = (plus - minus) / (2 * eps);
      expect(Math.abs(numeric - analytic[i]!), `d${w}[${i}]: numeric ${numeric}, analytic ${analytic[i]}`).toBeLessThanOrEqual(2e-3 + 2e-2 * Math.abs(numeric));
    }
  }
  await session.release();
}

describe('gradient rules vs finite differences', () => {
  const convCases: Array<[string, { n: number; ci: number; h: number; w: number; co: number; k: [number, number]; s: number; d: number; pads: number[]; bias: boolean }]> = [
    ['3x3 valid stride 1, 3 input channels (first-layer path)', { n: 2, ci: 3, h: 7, w: 6, co: 4, k: [3, 3], s: 1, d: 1, pads: [0, 0, 0, 0], bias: true }],
    ['3x3 valid stride 1, 9 input channels (GEMM path)', { n: 2, ci: 9, h: 6, w: 7, co: 3, k: [3, 3], s: 1, d: 1, pads: [0, 0, 0, 0], bias: true }],
    ['3x3 same stride 1', { n: 2, ci: 8, h: 5, w: 5, co: 3, k: [3, 3], s: 1, d: 1, pads: [1, 1, 1, 1], bias: false }],
    ['3x3 same stride 2 (asymmetric pads, as TF)', { n: 2, ci: 8, h: 6, w: 7, co: 4, k: [3, 3], s: 2, d: 1, pads: [0, 1, 1, 1], bias: true }],
    ['3x3 valid stride 2, odd leftovers', { n: 1, ci: 3, h: 8, w: 9, co: 2, k: [3, 3], s: 2, d: 1, pads: [0, 0, 0, 0], bias: true }],
    ['2x3 kernel, dilation 2, same', { n: 2, ci: 8, h: 7, w: 7, co: 3, k: [2, 3], s: 1, d: 2, pads: [1, 2, 0, 2], bias: false }],
    ['1x1 pointwise', { n: 2, ci: 10, h: 4, w: 5, co: 6, k: [1, 1], s: 1, d: 1, pads: [0, 0, 0, 0], bias: true }],
  ];
  for (const [name, p] of convCases) {
    it(`Conv ${name}`, async () => {
      const inputs: Record<string, number[]> = { x: [p.n, p.ci, p.h, p.w], w: [p.co, p.ci, ...p.k] };
      if (p.bias) inputs.b = [p.co];
      await gradCheck({ inputs }, (g, x) => g.node('Conv', [x.x!, x.w!, ...(p.bias ? [x.b!] : [])], { kernel_shape: p.k, strides: [p.s, p.s], dilations: [p.d, p.d], pads: p.pads }));
    });
  }

  for (const [name, mult, s, pads] of [
    ['multiplier 1, valid, stride 1', 1, 1, [0, 0, 0, 0]],
    ['multiplier 1, same, stride 2', 1, 2, [0, 0, 1, 1]],
    ['multiplier 2, same, stride 1', 2, 1, [1, 1, 1, 1]],
  ] as const) {
    it(`depthwise Conv ${name}`, async () => {
      const C = 4;
      await gradCheck({ inputs: { x: [2, C, 7, 6], w: [C * mult, 1, 3, 3], b: [C * mult] } }, (g, x) =>
        g.node('Conv', [x.x!, x.w!, x.b!], { kernel_shape: [3, 3], strides: [s, s], pads: [...pads], group: C }),
      );
    });
  }

  it('MaxPool 2x2 stride 2 (non-overlapping)', async () => {
    await gradCheck({ inputs: { x: [2, 3, 6, 7] }, distinct: true }, (g, x) => g.node('MaxPool', [x.x!], { kernel_shape: [2, 2], strides: [2, 2] }));
  });
  it('MaxPool 3x3 stride 2 same (overlapping windows)', async () => {
    await gradCheck({ inputs: { x: [2, 2, 7, 6] }, distinct: true }, (g, x) => g.node('MaxPool', [x.x!], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }));
  });
  it('GlobalAveragePool', async () => {
    await gradCheck({ inputs: { x: [2, 3, 4, 5] } }, (g, x) => g.node('GlobalAveragePool', [x.x!]));
  });
  it('Relu, Clip (ReLU6), LeakyRelu', async () => {
    await gradCheck({ inputs: { x: [2, 3, 4] }, awayFrom: [0] }, (g, x) => g.node('Relu', [x.x!]));
    await gradCheck({ inputs: { x: [2, 3, 4] }, awayFrom: [0, 0.5] }, (g, x) => g.node('Clip', [x.x!, g.scalar('lo', 0), g.scalar('hi', 0.5)]));
    await gradCheck({ inputs: { x: [2, 3, 4] }, awayFrom: [0] }, (g, x) => g.node('LeakyRelu', [x.x!], { alpha: { float: 0.2 } }));
  });
  it('Sigmoid, Tanh, Softmax', async () => {
    await gradCheck({ inputs: { x: [3, 5] } }, (g, x) => g.node('Sigmoid', [x.x!]));
    await gradCheck({ inputs: { x: [3, 5] } }, (g, x) => g.node('Tanh', [x.x!]));
    await gradCheck({ inputs: { x: [3, 5] } }, (g, x) => g.node('Softmax', [x.x!], { axis: 1 }));
  });
  it('Add, Sum, Sub, Mul with broadcasting; Div by a constant', async () => {
    await gradCheck({ inputs: { a: [2, 3, 4, 5], b: [3, 1, 1] } }, (g, x) => g.node('Add', [x.a!, x.b!]));
    await gradCheck({ inputs: { a: [2, 3], b: [2, 3], c: [2, 3] } }, (g, x) => g.node('Sum', [x.a!, x.b!, x.c!]));
    await gradCheck({ inputs: { a: [2, 3, 4], b: [4] } }, (g, x) => g.node('Sub', [x.a!, x.b!]));
    await gradCheck({ inputs: { a: [2, 3, 4], b: [1, 3, 1] } }, (g, x) => g.node('Mul', [x.a!, x.b!]));
    await gradCheck({ inputs: { a: [2, 3] } }, (g, x) => g.node('Div', [x.a!, g.scalar('k', 0.7)]));
  });
  it('Gemm (transB 0 and 1, with bias) and MatMul on 4-D input', async () => {
    await gradCheck({ inputs: { a: [4, 5], b: [5, 3], c: [3] } }, (g, x) => g.node('Gemm', [x.a!, x.b!, x.c!]));
    await gradCheck({ inputs: { a: [4, 5], b: [3, 5], c: [3] } }, (g, x) => g.node('Gemm', [x.a!, x.b!, x.c!], { transB: 1 }));
    await gradCheck({ inputs: { a: [2, 3, 2, 4], b: [4, 3] } }, (g, x) => g.node('MatMul', [x.a!, x.b!]));
  });
  it('Transpose, Reshape, Flatten, Pad, Concat', async () => {
    await gradCheck({ inputs: { x: [2, 3, 4, 5] } }, (g, x) => g.node('Transpose', [x.x!], { perm: [0, 2, 3, 1] }));
    await gradCheck({ inputs: { x: [2, 3, 4] } }, (g, x) => g.node('Reshape', [x.x!, g.int64Tensor('s', [0, -1])]));
    await gradCheck({ inputs: { x: [2, 3, 4] } }, (g, x) => g.node('Flatten', [x.x!], { axis: 1 }));
    await gradCheck({ inputs: { x: [1, 2, 3, 3] } }, (g, x) => g.node('Pad', [x.x!, g.int64Tensor('p', [0, 0, 1, 0, 0, 0, 0, 2])], { mode: 'constant' }));
    await gradCheck({ inputs: { a: [2, 3, 2], b: [2, 1, 2] } }, (g, x) => g.node('Concat', [x.a!, x.b!], { axis: 1 }));
  });
  it('ReduceMean (keepdims 1 and 0), Sqrt, Reciprocal, Neg', async () => {
    await gradCheck({ inputs: { x: [2, 3, 4, 5] } }, (g, x) => g.node('ReduceMean', [x.x!], { axes: [0, 2, 3], keepdims: 1 }));
    await gradCheck({ inputs: { x: [4, 3] } }, (g, x) => g.node('ReduceMean', [x.x!], { axes: [0], keepdims: 0 }));
    // keep the arguments of Sqrt and Reciprocal away from 0
    await gradCheck({ inputs: { x: [2, 3] } }, (g, x) => g.node('Sqrt', [g.node('Add', [g.node('Mul', [x.x!, x.x!]), g.scalar('one', 1)])]));
    await gradCheck({ inputs: { x: [2, 3] } }, (g, x) => g.node('Reciprocal', [g.node('Add', [g.node('Mul', [x.x!, x.x!]), g.scalar('one', 1)])]));
    await gradCheck({ inputs: { x: [2, 3] } }, (g, x) => g.node('Neg', [x.x!]));
  });
  it('batch-statistics normalisation as the converter builds it: (x - mean) / sqrt(var + eps) * gamma + beta', async () => {
    await gradCheck({ inputs: { x: [3, 2, 2, 2], gamma: [1, 2, 1, 1], beta: [1, 2, 1, 1] } }, (g, x) => {
      const mean = g.node('ReduceMean', [x.x!], { axes: [0, 2, 3], keepdims: 1 });
      const c = g.node('Sub', [x.x!, mean]);
      const v = g.node('ReduceMean', [g.node('Mul', [c, c])], { axes: [0, 2, 3], keepdims: 1 });
      const inv = g.node('Reciprocal', [g.node('Sqrt', [g.node('Add', [v, g.scalar('eps', 1e-3)])])]);
      return g.node('Add', [g.node('Mul', [g.node('Mul', [c, inv]), x.gamma!]), x.beta!]);
    });
  });
  it('a chain sharing a value (gradients accumulate): conv → relu → add(residual)', async () => {
    await gradCheck({ inputs: { x: [1, 4, 5, 5], w: [4, 4, 3, 3] }, awayFrom: [0] }, (g, x) => {
      const y = g.node('Conv', [x.x!, x.w!], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
      return g.node('Add', [g.node('Relu', [y]), x.x!]);
    });
  });
});
