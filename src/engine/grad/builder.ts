/**
 * Training graphs: a forward ONNX graph (from the exporter in training mode) plus a softmax cross-entropy loss
 * and the reverse-mode gradient of every trained parameter, as one ONNX model that onnxruntime runs. The
 * optimizer lives outside (engine/optimizers-js.ts); the graph only computes loss, logits and gradients.
 */
import type { OnnxGraphBuild } from '../../onnx/convert.js';
import type { NodeSpec } from '../../onnx/graph.js';
import { inferShapes } from '../../onnx/shapes.js';
import { GradContext, GradientError } from './context.js';
import { GRAD_RULES, NON_DIFFERENTIABLE_INPUTS } from './rules.js';

export { GradientError };

/**
 * Reverse-mode pass over `forwardNodes`: from the seed gradients (value → gradient value), emits the nodes
 * that compute the gradient of every value in `wrt`. Returns wrt value → gradient value (absent: no path).
 */
export function backprop(c: GradContext, forwardNodes: NodeSpec[], wrt: string[], seeds: Map<string, string>): Map<string, string> {
  const requires = new Set<string>(wrt);
  for (const n of forwardNodes) {
    const skip = NON_DIFFERENTIABLE_INPUTS[n.op] ?? [];
    if (n.inputs.some((inp, i) => inp && !skip.includes(i) && requires.has(inp))) for (const o of n.outputs) requires.add(o);
  }
  const grads = new Map<string, string[]>([...seeds].map(([v, gr]) => [v, [gr]]));
  const gradOf = (v: string): string | undefined => {
    const parts = grads.get(v);
    if (!parts?.length) return undefined;
    if (parts.length === 1) return parts[0];
    const summed = c.node('Sum', parts, {}, 'grad/accumulate');
    grads.set(v, [summed]);
    return summed;
  };
  for (let i = forwardNodes.length - 1; i >= 0; i--) {
    const n = forwardNodes[i]!;
    if (!n.outputs.some((o) => requires.has(o))) continue;
    const dY = gradOf(n.outputs[0]!);
    if (!dY) continue;
    const skip = NON_DIFFERENTIABLE_INPUTS[n.op] ?? [];
    const need = n.inputs.map((inp, k) => Boolean(inp) && !skip.includes(k) && requires.has(inp));
    if (!need.some(Boolean)) continue;
    const rule = GRAD_RULES[n.op];
    if (!rule) throw new GradientError(`training through ${n.op} (node ${n.name}) is not supported`);
    const dX = rule(c, n, dY, need);
    n.inputs.forEach((inp, k) => {
      if (!need[k] || !dX[k]) return;
      const list = grads.get(inp) ?? [];
      list.push(dX[k]!);
      grads.set(inp, list);
    });
  }
  const out = new Map<string, string>();
  for (const v of wrt) {
    const gv = gradOf(v);
    if (gv) out.set(v, gv);
  }
  return out;
}

export interface TrainingGraph {
  bytes: Uint8Array;
  /** Fixed batch size of the graph. */
  batch: number;
  /** Inputs besides the parameters. */
  inputName: string;
  labelsName: string;
  weightsName: string;
  /** Dropout masks with their shapes. */
  masks: Array<{ name: string; rate: number; shape: number[] }>;
  /** Parameter input names, in order, and the output that holds each one's gradient. */
  params: Array<{ name: string; grad: string; dims: number[] }>;
  /** Sum over the batch of weight * cross-entropy (a scalar). */
  lossName: string;
  logitsName: string;
  /** Live BatchNormalization layers: outputs with their batch mean and variance, and the values per channel. */
  batchStats: Array<{ layer: string; mean: string; variance: string; count: number; momentum: number }>;
}

/**
 * Appends loss and gradients to `build` (which must have been built with `training` and `logits`).
 * Inputs of the result: the image batch, `labels` (one-hot, possibly smoothed, [batch, classes]),
 * `sample_weights` ([batch]), the dropout masks and every parameter.
 */
/**
 * Relu followed only by MaxPool becomes MaxPool then Relu (they commute: both are monotonic), so the Relu and
 * its gradient run on the pooled tensor, a quarter of the size for 2x2 pooling.
 */
export function poolBeforeRelu(g: OnnxGraphBuild['graph']): number {
  const consumers = new Map<string, number>();
  for (const n of g.nodes) for (const i of n.inputs) consumers.set(i, (consumers.get(i) ?? 0) + 1);
  const outputs = new Set(g.outputs.map((o) => o.name));
  let swapped = 0;
  for (let k = 0; k + 1 < g.nodes.length; k++) {
    const relu = g.nodes[k]!;
    const pool = g.nodes.find((n) => n.op === 'MaxPool' && n.inputs[0] === relu.outputs[0]);
    if (relu.op !== 'Relu' || !pool || consumers.get(relu.outputs[0]!) !== 1 || outputs.has(relu.outputs[0]!)) continue;
    const x = relu.inputs[0]!;
    const pooled = g.unique(`${pool.name}/before_relu`);
    const z = pool.outputs[0]!;
    pool.inputs[0] = x;
    pool.outputs[0] = pooled;
    relu.inputs[0] = pooled;
    relu.outputs[0] = z;
    const pi = g.nodes.indexOf(pool);
    g.nodes.splice(pi, 1);
    g.nodes.splice(k, 0, pool);
    k++;
    swapped++;
  }
  return swapped;
}

export function buildTrainingGraph(build: OnnxGraphBuild, batch: number): TrainingGraph {
  const g = build.graph;
  poolBeforeRelu(g);
  const inShape = build.kerasInputShape.map((d, i) => (i === 0 ? batch : d));
  if (inShape.some((d) => d === null)) throw new GradientError(`training needs a fixed input size, the model takes ${JSON.stringify(build.kerasInputShape)}`);
  g.inputs[0]!.shape = inShape as number[];
  const sameAs = Object.fromEntries(build.dropoutMasks.map((m) => [m.name, m.like]));
  const shapes = inferShapes(g, { [build.inputName]: inShape as number[] }, sameAs);
  for (const m of build.dropoutMasks) {
    shapes.set(m.name, shapes.get(m.like)!);
    g.inputs.find((i) => i.name === m.name)!.shape = shapes.get(m.like)!;
  }
  const c = new GradContext(g, shapes);
  const logits = g.nodes.find((n) => n.op === 'Identity' && n.outputs[0] === build.outputName)!.inputs[0]!;
  const classes = shapes.get(logits)![1]!;

  const forwardNodes = [...g.nodes];

  // loss: sum_i w_i * CE(softmax(logits_i), labels_i); dLogits = w_i * (softmax - labels)
  const labels = g.addInput('labels', [batch, classes]);
  const weights = g.addInput('sample_weights', [batch]);
  const logp = g.node('LogSoftmax', [logits], { axis: 1 }, 'loss/logsoftmax');
  const ce = g.node('Neg', [g.node('ReduceSum', [g.node('Mul', [labels, logp], {}, 'loss/mul'), c.int64([1])], { keepdims: 0 }, 'loss/sum')], {}, 'loss/ce');
  const loss = g.node('ReduceSum', [g.node('Mul', [ce, weights], {}, 'loss/weighted'), c.int64([0])], { keepdims: 0 }, 'loss/total');
  const w2 = g.node('Unsqueeze', [weights, c.int64([1])], {}, 'loss/w2');
  const dLogits = g.node('Mul', [g.node('Sub', [g.node('Softmax', [logits], { axis: 1 }, 'loss/softmax'), labels], {}, 'loss/diff'), w2], {}, 'grad/logits');
  const gradOf = backprop(c, forwardNodes, build.params.map((p) => p.onnxName), new Map([[logits, dLogits]]));

  const params = build.params.map((p) => {
    const gname = gradOf.get(p.onnxName);
    if (!gname) throw new GradientError(`parameter ${p.kerasName} gets no gradient (is it connected to the output?)`);
    const out = `grad:${p.onnxName}`;
    g.node('Identity', [gname], {}, out);
    g.renameValue(g.nodes[g.nodes.length - 1]!.outputs[0]!, out);
    g.addOutput(out, p.dims);
    return { name: p.onnxName, grad: out, dims: p.dims };
  });
  const lossOut = 'loss';
  g.node('Identity', [loss], {}, '__loss');
  g.renameValue('__loss', lossOut);
  g.addOutput(lossOut, []);
  g.outputs[0]!.shape = [batch, classes];
  return {
    bytes: g.toBytes(`${build.modelName}_training`, 'tlearn training graph: loss and parameter gradients'),
    batch,
    inputName: build.inputName,
    labelsName: labels,
    weightsName: weights,
    masks: build.dropoutMasks.map((m) => ({ name: m.name, rate: m.rate, shape: shapes.get(m.like)! })),
    params,
    lossName: lossOut,
    logitsName: build.outputName,
    batchStats: build.batchStats.map((b) => ({ layer: b.layer, mean: b.mean, variance: b.variance, count: b.perSample * batch, momentum: b.momentum })),
  };
}
