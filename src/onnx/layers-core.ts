/** Dense, reshaping, activation, merge and normalisation layers (BatchNormalization in layers-batchnorm.ts). */
import type { LayerNode } from '../backbones/keras-graph.js';
import { UnsupportedModelError } from '../backbones/keras-graph.js';
import { ConvertContext, one, type LayerConverter, type Value } from './context.js';
import { batchNorm } from './layers-batchnorm.js';

const identity: LayerConverter = (_ctx, layer, inputs) => [one(layer, inputs)];

/** Inference: identity. Training: x * mask, the mask (0 or 1/(1-rate)) fed per step. */
const dropout: LayerConverter = (ctx, layer, inputs) => {
  const x = one(layer, inputs);
  const rate: number = layer.config.rate ?? 0;
  if (!ctx.training || ctx.training.dropout === false || rate <= 0) return [x];
  const name = ctx.g.unique(`dropout_mask/${layer.name}`);
  ctx.g.addInput(name, undefined);
  ctx.dropoutMasks.push({ name, rate, layer: layer.name, like: x.name });
  return [ctx.binary('Mul', x, name, layer.name)];
};

const dense: LayerConverter = (ctx, layer, inputs) => {
  let x = one(layer, inputs);
  const kernel = ctx.weights.get(layer.name, 'kernel');
  const [, units] = kernel.shape as [number, number];
  const bias = layer.config.use_bias === false ? null : ctx.weights.get(layer.name, 'bias');
  const W = ctx.weightTensor(layer.name, 'kernel', `${layer.name}/kernel`, kernel.data, kernel.shape);
  let y: Value;
  if (x.shape.length === 2) {
    const ins = [x.name, W];
    if (bias) ins.push(ctx.weightTensor(layer.name, 'bias', `${layer.name}/bias`, bias.data, [units]));
    y = { name: ctx.g.node('Gemm', ins, {}, layer.name), shape: [null, units], layout: 'nhwc' };
  } else {
    x = ctx.nhwc(x);
    let name = ctx.g.node('MatMul', [x.name, W], {}, layer.name);
    if (bias) name = ctx.g.node('Add', [name, ctx.weightTensor(layer.name, 'bias', `${layer.name}/bias`, bias.data, [units])], {}, `${layer.name}_bias`);
    y = { name, shape: [...x.shape.slice(0, -1), units], layout: 'nhwc' };
  }
  return [ctx.activation(y, layer.config.activation, `${layer.name}_act`)];
};

function product(dims: Array<number | null>): number | null {
  let p = 1;
  for (const d of dims) {
    if (d === null) return null;
    p *= d;
  }
  return p;
}

const flatten: LayerConverter = (ctx, layer, inputs) => {
  const x = ctx.nhwc(one(layer, inputs));
  if (x.shape.length === 2) return [x];
  return [{ name: ctx.g.node('Flatten', [x.name], { axis: 1 }, layer.name), shape: [null, product(x.shape.slice(1))], layout: 'nhwc' }];
};

const reshape: LayerConverter = (ctx, layer, inputs) => {
  const x = ctx.nhwc(one(layer, inputs));
  const target: number[] = (layer.config.target_shape as Array<number | null>).map((d) => (d === null ? -1 : d));
  const shape = ctx.g.int64Tensor(`${layer.name}/shape`, [0, ...target]);
  const total = product(x.shape.slice(1));
  const known = target.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const out = target.map((d) => (d === -1 ? (total === null ? null : total / known) : d));
  return [{ name: ctx.g.node('Reshape', [x.name, shape], {}, layer.name), shape: [null, ...out], layout: 'nhwc' }];
};

const permute: LayerConverter = (ctx, layer, inputs) => {
  const x = ctx.nhwc(one(layer, inputs));
  const dims: number[] = layer.config.dims;
  const perm = [0, ...dims];
  return [{ name: ctx.g.node('Transpose', [x.name], { perm }, layer.name), shape: perm.map((p) => x.shape[p]!), layout: 'nhwc' }];
};

const activationLayer: LayerConverter = (ctx, layer, inputs) => [ctx.activation(one(layer, inputs), layer.config.activation, layer.name)];

const relu: LayerConverter = (ctx, layer, inputs) => {
  const x = one(layer, inputs);
  const max: number | null | undefined = layer.config.max_value;
  const slope: number = layer.config.negative_slope ?? 0;
  const threshold: number = layer.config.threshold ?? 0;
  let y: Value;
  if (threshold !== 0) {
    const cond = ctx.g.node('GreaterOrEqual', [x.name, ctx.g.scalar(`${layer.name}_thr`, threshold)], {}, `${layer.name}_cond`);
    const shifted = ctx.g.node('Sub', [x.name, ctx.g.scalar(`${layer.name}_thr2`, threshold)], {}, `${layer.name}_shift`);
    const neg = ctx.g.node('Mul', [shifted, ctx.g.scalar(`${layer.name}_slope`, slope)], {}, `${layer.name}_neg`);
    y = { ...x, name: ctx.g.node('Where', [cond, x.name, neg], {}, `${layer.name}_where`) };
  } else if (slope !== 0) {
    y = ctx.unary('LeakyRelu', x, `${layer.name}_leaky`, { alpha: { float: slope } });
  } else if (max !== null && max !== undefined) {
    return [ctx.clip(x, 0, max, layer.name)];
  } else {
    return [ctx.unary('Relu', x, layer.name)];
  }
  if (max !== null && max !== undefined) y = ctx.binary('Min', y, ctx.g.scalar(`${layer.name}_max`, max), layer.name);
  return [y];
};

const leakyRelu: LayerConverter = (ctx, layer, inputs) => [
  ctx.unary('LeakyRelu', one(layer, inputs), layer.name, { alpha: { float: layer.config.alpha ?? layer.config.negative_slope ?? 0.3 } }),
];

const elu: LayerConverter = (ctx, layer, inputs) => [ctx.unary('Elu', one(layer, inputs), layer.name, { alpha: { float: layer.config.alpha ?? 1 } })];

const thresholdedRelu: LayerConverter = (ctx, layer, inputs) => [
  ctx.unary('ThresholdedRelu', one(layer, inputs), layer.name, { alpha: { float: layer.config.theta ?? 1 } }),
];

const prelu: LayerConverter = (ctx, layer, inputs) => {
  const x = ctx.nhwc(one(layer, inputs));
  const alpha = ctx.weights.get(layer.name, 'alpha');
  const slope = ctx.g.floatTensor(`${layer.name}/alpha`, alpha.data, alpha.shape);
  return [{ ...x, name: ctx.g.node('PRelu', [x.name, slope], {}, layer.name) }];
};

const softmax: LayerConverter = (ctx, layer, inputs) => {
  const x = one(layer, inputs);
  const axis = Array.isArray(layer.config.axis) ? layer.config.axis[0] : (layer.config.axis ?? -1);
  return [ctx.unary('Softmax', x, layer.name, { axis: ctx.axis(x, axis) })];
};

/** Brings every input to one layout (NCHW if any image tensor already is). */
function alignLayouts(ctx: ConvertContext, inputs: Value[]): Value[] {
  const want = inputs.some((v) => v.layout === 'nchw' && v.shape.length === 4) ? 'nchw' : 'nhwc';
  return inputs.map((v) => ctx.layout(v, want));
}

function merge(op: 'Add' | 'Mul' | 'Max' | 'Min' | 'Sub' | 'Mean'): LayerConverter {
  return (ctx, layer, inputs) => {
    if (inputs.length < 2) throw new UnsupportedModelError(`layer ${layer.name} (${layer.className}) needs at least two inputs`);
    if (op === 'Sub' && inputs.length !== 2) throw new UnsupportedModelError(`layer ${layer.name} (Subtract) needs exactly two inputs`);
    const xs = alignLayouts(ctx, inputs);
    const name = ctx.g.node(op === 'Add' && xs.length > 2 ? 'Sum' : op, xs.map((v) => v.name), {}, layer.name);
    return [{ ...xs[0]!, name }];
  };
}

const concatenate: LayerConverter = (ctx, layer, inputs) => {
  const xs = alignLayouts(ctx, inputs);
  const first = xs[0]!;
  const rank = first.shape.length;
  const kerasAxis = (layer.config.axis ?? -1) < 0 ? (layer.config.axis ?? -1) + rank : layer.config.axis;
  const shape = [...first.shape];
  shape[kerasAxis] = xs.reduce<number | null>((acc, v) => (acc === null || v.shape[kerasAxis] === null ? null : acc + (v.shape[kerasAxis] as number)), 0);
  return [{ name: ctx.g.node('Concat', xs.map((v) => v.name), { axis: ctx.axis(first, kerasAxis) }, layer.name), shape, layout: first.layout }];
};

const layerNorm: LayerConverter = (ctx, layer, inputs) => {
  const x = ctx.nhwc(one(layer, inputs));
  const axis = Array.isArray(layer.config.axis) ? layer.config.axis : [layer.config.axis ?? -1];
  const rank = x.shape.length;
  if (axis.length !== 1 || (axis[0] !== -1 && axis[0] !== rank - 1)) throw new UnsupportedModelError(`layer ${layer.name} (LayerNormalization): only axis -1 is supported`);
  const c = x.shape[rank - 1] as number;
  const gamma = layer.config.scale === false ? new Float32Array(c).fill(1) : ctx.weights.get(layer.name, 'gamma').data;
  const beta = layer.config.center === false ? new Float32Array(c) : ctx.weights.get(layer.name, 'beta').data;
  const ins = [x.name, ctx.g.floatTensor(`${layer.name}/gamma`, gamma, [c]), ctx.g.floatTensor(`${layer.name}/beta`, beta, [c])];
  return [{ ...x, name: ctx.g.node('LayerNormalization', ins, { axis: -1, epsilon: { float: layer.config.epsilon ?? 1e-3 } }, layer.name) }];
};

function constant(ctx: ConvertContext, x: Value, hint: string, v: number | number[]): string {
  if (typeof v === 'number') return ctx.g.scalar(hint, v);
  return ctx.g.floatTensor(hint, Float32Array.from(v), ctx.channelShape(x, v.length));
}

const rescaling: LayerConverter = (ctx, layer, inputs) => {
  const x = one(layer, inputs);
  const scale = layer.config.scale ?? 1;
  const offset = layer.config.offset ?? 0;
  const y = ctx.binary('Mul', x, constant(ctx, x, `${layer.name}/scale`, scale), `${layer.name}_scale`);
  return [ctx.binary('Add', y, constant(ctx, x, `${layer.name}/offset`, offset), layer.name)];
};

const normalization: LayerConverter = (ctx, layer, inputs) => {
  const x = one(layer, inputs);
  const mean = Array.from(ctx.weights.get(layer.name, 'mean').data);
  const variance = Array.from(ctx.weights.get(layer.name, 'variance').data);
  const std = variance.map((v) => Math.max(Math.sqrt(v), 1e-7));
  const c = x.shape[x.shape.length - 1];
  if (mean.length !== 1 && mean.length !== c) throw new UnsupportedModelError(`layer ${layer.name} (Normalization): only per-channel statistics are supported`);
  const y = ctx.binary('Sub', x, constant(ctx, x, `${layer.name}/mean`, mean.length === 1 ? mean[0]! : mean), `${layer.name}_center`);
  return [ctx.binary('Div', y, constant(ctx, x, `${layer.name}/std`, std.length === 1 ? std[0]! : std), layer.name)];
};

export const coreLayers: Record<string, LayerConverter> = {
  Dense: dense,
  Flatten: flatten,
  Reshape: reshape,
  Permute: permute,
  Dropout: dropout,
  SpatialDropout1D: identity,
  SpatialDropout2D: identity,
  GaussianNoise: identity,
  GaussianDropout: identity,
  AlphaDropout: identity,
  ActivityRegularization: identity,
  Activation: activationLayer,
  ReLU: relu,
  LeakyReLU: leakyRelu,
  ELU: elu,
  ThresholdedReLU: thresholdedRelu,
  PReLU: prelu,
  Softmax: softmax,
  Add: merge('Add'),
  Subtract: merge('Sub'),
  Multiply: merge('Mul'),
  Average: merge('Mean'),
  Maximum: merge('Max'),
  Minimum: merge('Min'),
  Concatenate: concatenate,
  BatchNormalization: batchNorm,
  LayerNormalization: layerNorm,
  Rescaling: rescaling,
  Normalization: normalization,
};

export type { LayerNode };
