/**
 * BatchNormalization. Frozen (inference mode): a per-channel scale and shift from the moving statistics, folded
 * into the convolution before it where possible (layers-conv.ts). Live (training graphs): normalised with the
 * batch's own mean and variance, which the graph also outputs so the trainer can update the moving statistics
 * with a momentum; or, in evaluation graphs, with the moving statistics fed as inputs, so they can change
 * between runs without rebuilding the graph.
 */
import { UnsupportedModelError } from '../backbones/keras-graph.js';
import { ConvertContext, one, type LayerConverter, type Value } from './context.js';
import type { LayerNode } from '../backbones/keras-graph.js';
import { batchNormScaleShift } from './layers-conv.js';

function liveBatchNorm(ctx: ConvertContext, layer: LayerNode, x: Value, channels: number): Value {
  const g = ctx.g;
  const cfg = layer.config;
  const shape = ctx.channelShape(x, channels);
  const rank = x.shape.length;
  const param = (w: 'gamma' | 'beta') => ctx.weightTensor(layer.name, w, `${layer.name}/${w}`, ctx.weights.get(layer.name, w).data, shape);
  const gamma = cfg.scale === false ? undefined : param('gamma');
  const beta = cfg.center === false ? undefined : param('beta');
  const eps = g.scalar(`${layer.name}/epsilon`, cfg.epsilon ?? 1e-3);
  const invStd = (variance: string) => g.node('Reciprocal', [g.node('Sqrt', [g.node('Add', [variance, eps], {}, `${layer.name}_var_eps`)], {}, `${layer.name}_std`)], {}, `${layer.name}_inv_std`);
  if (ctx.training?.batchNorm === 'moving') {
    const mean = ctx.stateTensor(layer.name, 'moving_mean', ctx.weights.get(layer.name, 'moving_mean').data, shape);
    const variance = ctx.stateTensor(layer.name, 'moving_variance', ctx.weights.get(layer.name, 'moving_variance').data, shape);
    const inv = invStd(variance);
    const scale = gamma ? g.node('Mul', [inv, gamma], {}, `${layer.name}_scale_of`) : inv;
    const centred = g.node('Mul', [mean, scale], {}, `${layer.name}_mean_scaled`);
    const shift = beta ? g.node('Sub', [beta, centred], {}, `${layer.name}_shift_of`) : g.node('Neg', [centred], {}, `${layer.name}_shift_of`);
    return ctx.binary('Add', ctx.binary('Mul', x, scale, `${layer.name}_scale`), shift, layer.name);
  }
  const axes = x.layout === 'nchw' && rank === 4 ? [0, 2, 3] : Array.from({ length: rank - 1 }, (_, i) => i);
  const mean = g.node('ReduceMean', [x.name], { axes, keepdims: 1 }, `${layer.name}_batch_mean`);
  const centred = g.node('Sub', [x.name, mean], {}, `${layer.name}_centred`);
  const variance = g.node('ReduceMean', [g.node('Mul', [centred, centred], {}, `${layer.name}_sq`)], { axes, keepdims: 1 }, `${layer.name}_batch_var`);
  let y = g.node('Mul', [centred, invStd(variance)], {}, `${layer.name}_normalised`);
  if (gamma) y = g.node('Mul', [y, gamma], {}, `${layer.name}_gamma`);
  if (beta) y = g.node('Add', [y, beta], {}, layer.name);
  const perSample = (x.shape.slice(1, -1) as number[]).reduce((a, b) => a * b, 1);
  if (!Number.isFinite(perSample)) throw new UnsupportedModelError(`layer ${layer.name} (BatchNormalization): training needs a fixed input size`);
  ctx.batchStats.push({ layer: layer.name, mean, variance, channels, perSample, momentum: cfg.momentum ?? 0.99 });
  return { ...x, name: y };
}

export const batchNorm: LayerConverter = (ctx, layer, inputs) => {
  const x = one(layer, inputs);
  let axis = layer.config.axis ?? -1;
  if (Array.isArray(axis)) axis = axis.length === 1 ? axis[0] : NaN;
  const rank = x.shape.length;
  if (axis !== -1 && axis !== rank - 1) throw new UnsupportedModelError(`layer ${layer.name} (BatchNormalization): only the channel axis (-1) is supported, got ${JSON.stringify(layer.config.axis)}`);
  const channels = x.shape[rank - 1] as number;
  if (ctx.bnLive(layer.name)) return [liveBatchNorm(ctx, layer, x, channels)];
  const { scale, shift } = batchNormScaleShift(ctx, layer, channels);
  const shape = ctx.channelShape(x, channels);
  const mul = ctx.binary('Mul', x, ctx.g.floatTensor(`${layer.name}/scale`, scale, shape), `${layer.name}_scale`);
  return [ctx.binary('Add', mul, ctx.g.floatTensor(`${layer.name}/shift`, shift, shape), layer.name)];
};
