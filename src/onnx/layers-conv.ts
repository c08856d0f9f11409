/** Convolution, pooling and spatial layers. Tensors are computed in NCHW (ONNX's layout). */
import type { LayerNode } from '../backbones/keras-graph.js';
import { UnsupportedModelError } from '../backbones/keras-graph.js';
import { ConvertContext, one, pair, type LayerConverter, type Scope, type Value } from './context.js';

type Dim = number | null;

interface Geometry {
  attrs: Record<string, any>;
  outH: Dim;
  outW: Dim;
}

/** ONNX pads/auto_pad and the output size for a Keras 'valid'/'same' window op. */
export function windowGeometry(layer: LayerNode, h: Dim, w: Dim, k: [number, number], s: [number, number], d: [number, number], padding: string): Geometry {
  const eff = [(k[0] - 1) * d[0] + 1, (k[1] - 1) * d[1] + 1];
  if (padding === 'valid') {
    return {
      attrs: { pads: [0, 0, 0, 0] },
      outH: h === null ? null : Math.floor((h - eff[0]!) / s[0]) + 1,
      outW: w === null ? null : Math.floor((w - eff[1]!) / s[1]) + 1,
    };
  }
  if (padding !== 'same') throw new UnsupportedModelError(`layer ${layer.name} (${layer.className}): padding '${padding}' is not supported`);
  if (h === null || w === null) {
    return { attrs: { auto_pad: 'SAME_UPPER' }, outH: null, outW: null };
  }
  const outH = Math.ceil(h / s[0]);
  const outW = Math.ceil(w / s[1]);
  const padH = Math.max((outH - 1) * s[0] + eff[0]! - h, 0);
  const padW = Math.max((outW - 1) * s[1] + eff[1]! - w, 0);
  const top = Math.floor(padH / 2);
  const left = Math.floor(padW / 2);
  return { attrs: { pads: [top, left, padH - top, padW - left] }, outH, outW };
}

/** Keras conv kernel [kh, kw, in, out] → ONNX [out, in, kh, kw]. */
export function convKernelToOnnx(k: Float32Array, shape: number[]): Float32Array {
  const [kh, kw, cin, cout] = shape as [number, number, number, number];
  const out = new Float32Array(k.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++) out[((o * cin + i) * kh + y) * kw + x] = k[((y * kw + x) * cin + i) * cout + o]!;
  return out;
}

/** Keras depthwise kernel [kh, kw, in, mult] → ONNX grouped conv weight [in*mult, 1, kh, kw]. */
export function depthwiseKernelToOnnx(k: Float32Array, shape: number[]): Float32Array {
  const [kh, kw, cin, mult] = shape as [number, number, number, number];
  const out = new Float32Array(k.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let c = 0; c < cin; c++)
        for (let m = 0; m < mult; m++) out[((c * mult + m) * kh + y) * kw + x] = k[((y * kw + x) * cin + c) * mult + m]!;
  return out;
}

/** Keras conv kernel from ONNX layout [out, in, kh, kw] (inverse of convKernelToOnnx). */
export function onnxToConvKernel(w: Float32Array, shape: number[]): Float32Array {
  const [kh, kw, cin, cout] = shape as [number, number, number, number];
  const out = new Float32Array(w.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++) out[((y * kw + x) * cin + i) * cout + o] = w[((o * cin + i) * kh + y) * kw + x]!;
  return out;
}

/** Keras depthwise kernel from ONNX layout (inverse of depthwiseKernelToOnnx). */
export function onnxToDepthwiseKernel(w: Float32Array, shape: number[]): Float32Array {
  const [kh, kw, cin, mult] = shape as [number, number, number, number];
  const out = new Float32Array(w.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let c = 0; c < cin; c++)
        for (let m = 0; m < mult; m++) out[((y * kw + x) * cin + c) * mult + m] = w[((c * mult + m) * kh + y) * kw + x]!;
  return out;
}

/** gamma / sqrt(var + eps) and beta - mean * that, for a BatchNormalization layer. */
export function batchNormScaleShift(ctx: ConvertContext, bn: LayerNode, channels: number): { scale: Float32Array; shift: Float32Array } {
  const cfg = bn.config;
  const eps = cfg.epsilon ?? 1e-3;
  const gamma = cfg.scale === false ? null : ctx.weights.get(bn.name, 'gamma').data;
  const beta = cfg.center === false ? null : ctx.weights.get(bn.name, 'beta').data;
  const mean = ctx.weights.get(bn.name, 'moving_mean').data;
  const variance = ctx.weights.get(bn.name, 'moving_variance').data;
  if (mean.length !== channels) throw new UnsupportedModelError(`layer ${bn.name}: ${mean.length} statistics for ${channels} channels`);
  const scale = new Float32Array(channels);
  const shift = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const s = (gamma ? gamma[c]! : 1) / Math.sqrt(variance[c]! + eps);
    scale[c] = s;
    shift[c] = (beta ? beta[c]! : 0) - mean[c]! * s;
  }
  return { scale, shift };
}

function bnAxisIsChannels(bn: LayerNode, rank: number): boolean {
  let axis = bn.config.axis ?? -1;
  if (Array.isArray(axis)) {
    if (axis.length !== 1) return false;
    axis = axis[0];
  }
  return axis === -1 || axis === rank - 1;
}

/** The BatchNormalization layer that only consumes this conv's output, if it can be folded into the conv. */
function foldableBatchNorm(ctx: ConvertContext, layer: LayerNode, scope: Scope): LayerNode | undefined {
  // a trained convolution keeps its BatchNormalization separate (frozen, inference mode)
  if (ctx.layerTrained(layer.name, ['kernel', 'depthwise_kernel', 'pointwise_kernel', 'bias'])) return undefined;
  if (layer.calls.length !== 1 || (layer.config.activation ?? 'linear') !== 'linear') return undefined;
  const c = scope.consumers(layer.name);
  if (c.count !== 1 || c.consumers.length !== 1) return undefined;
  const bn = c.consumers[0]!;
  if (bn.className !== 'BatchNormalization' || bn.calls.length !== 1 || !bnAxisIsChannels(bn, 4)) return undefined;
  if (ctx.bnLive(bn.name)) return undefined;
  return bn;
}

interface KernelSource {
  weight: string;
  kerasShape: number[];
  toKeras: (onnx: Float32Array, kerasShape: number[]) => Float32Array;
}

/** Emits Conv (weight in ONNX layout) with optional bias, folding a following BatchNormalization when not training. */
function emitConv(ctx: ConvertContext, layer: LayerNode, scope: Scope, x: Value, weight: Float32Array, wShape: number[], bias: Float32Array | null, attrs: Record<string, any>, outShape: Array<Dim>, src: KernelSource): Value {
  const cout = wShape[0]!;
  const bn = foldableBatchNorm(ctx, layer, scope);
  let b = bias;
  if (bn) {
    const { scale, shift } = batchNormScaleShift(ctx, bn, cout);
    const per = weight.length / cout;
    weight = Float32Array.from(weight, (v, i) => v * scale[Math.floor(i / per)]!);
    b = Float32Array.from(shift, (sh, o) => (bias ? bias[o]! : 0) * scale[o]! + sh);
    ctx.absorbed.add(bn.name);
  }
  const inputs = [x.name, bn ? ctx.g.floatTensor(`${layer.name}/W`, weight, wShape) : ctx.weightTensor(layer.name, src.weight, `${layer.name}/W`, weight, wShape, (d) => src.toKeras(d, src.kerasShape))];
  if (b) inputs.push(bn || !bias ? ctx.g.floatTensor(`${layer.name}/B`, b, [cout]) : ctx.weightTensor(layer.name, 'bias', `${layer.name}/B`, b, [cout]));
  const y: Value = { name: ctx.g.node('Conv', inputs, attrs, layer.name), shape: outShape, layout: 'nchw' };
  return ctx.activation(y, layer.config.activation, `${layer.name}_act`);
}

function checkChannelsLast(layer: LayerNode): void {
  const df = layer.config.data_format;
  if (df && df !== 'channels_last') throw new UnsupportedModelError(`layer ${layer.name} (${layer.className}): data_format '${df}' is not supported (channels_last only)`);
}

const conv2d: LayerConverter = (ctx, layer, inputs, scope) => {
  checkChannelsLast(layer);
  const x = ctx.nchw(one(layer, inputs));
  const cfg = layer.config;
  const kernel = ctx.weights.get(layer.name, 'kernel');
  const [kh, kw, cinPerGroup, cout] = kernel.shape as [number, number, number, number];
  const cin = x.shape[3] ?? cinPerGroup;
  const groups = cfg.groups ?? 1;
  const s = pair(cfg.strides, 1);
  const d = pair(cfg.dilation_rate, 1);
  const geo = windowGeometry(layer, x.shape[1]!, x.shape[2]!, [kh, kw], s, d, cfg.padding ?? 'valid');
  const bias = cfg.use_bias === false ? null : ctx.weights.get(layer.name, 'bias').data;
  const attrs = { ...geo.attrs, kernel_shape: [kh, kw], strides: s, dilations: d, group: groups };
  if (cin !== cinPerGroup * groups) throw new UnsupportedModelError(`layer ${layer.name}: kernel expects ${cinPerGroup * groups} input channels, got ${cin}`);
  return [emitConv(ctx, layer, scope, x, convKernelToOnnx(kernel.data, kernel.shape), [cout, cinPerGroup, kh, kw], bias, attrs, [null, geo.outH, geo.outW, cout], { weight: 'kernel', kerasShape: kernel.shape, toKeras: onnxToConvKernel })];
};

const depthwiseConv2d: LayerConverter = (ctx, layer, inputs, scope) => {
  checkChannelsLast(layer);
  const x = ctx.nchw(one(layer, inputs));
  const cfg = layer.config;
  const kernel = ctx.weights.get(layer.name, 'depthwise_kernel');
  const [kh, kw, cin, mult] = kernel.shape as [number, number, number, number];
  const s = pair(cfg.strides, 1);
  const d = pair(cfg.dilation_rate, 1);
  const geo = windowGeometry(layer, x.shape[1]!, x.shape[2]!, [kh, kw], s, d, cfg.padding ?? 'valid');
  const bias = cfg.use_bias === false ? null : ctx.weights.get(layer.name, 'bias').data;
  const attrs = { ...geo.attrs, kernel_shape: [kh, kw], strides: s, dilations: d, group: cin };
  return [emitConv(ctx, layer, scope, x, depthwiseKernelToOnnx(kernel.data, kernel.shape), [cin * mult, 1, kh, kw], bias, attrs, [null, geo.outH, geo.outW, cin * mult], { weight: 'depthwise_kernel', kerasShape: kernel.shape, toKeras: onnxToDepthwiseKernel })];
};

const separableConv2d: LayerConverter = (ctx, layer, inputs, scope) => {
  checkChannelsLast(layer);
  const x = ctx.nchw(one(layer, inputs));
  const cfg = layer.config;
  const dk = ctx.weights.get(layer.name, 'depthwise_kernel');
  const pk = ctx.weights.get(layer.name, 'pointwise_kernel');
  const [kh, kw, cin, mult] = dk.shape as [number, number, number, number];
  const cout = pk.shape[3]!;
  const s = pair(cfg.strides, 1);
  const d = pair(cfg.dilation_rate, 1);
  const geo = windowGeometry(layer, x.shape[1]!, x.shape[2]!, [kh, kw], s, d, cfg.padding ?? 'valid');
  const dwAttrs = { ...geo.attrs, kernel_shape: [kh, kw], strides: s, dilations: d, group: cin };
  const dwW = ctx.weightTensor(layer.name, 'depthwise_kernel', `${layer.name}/depthwise_W`, depthwiseKernelToOnnx(dk.data, dk.shape), [cin * mult, 1, kh, kw], (d) => onnxToDepthwiseKernel(d, dk.shape));
  const dw: Value = { name: ctx.g.node('Conv', [x.name, dwW], dwAttrs, `${layer.name}_depthwise`), shape: [null, geo.outH, geo.outW, cin * mult], layout: 'nchw' };
  const bias = cfg.use_bias === false ? null : ctx.weights.get(layer.name, 'bias').data;
  const pwAttrs = { kernel_shape: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], group: 1 };
  return [emitConv(ctx, layer, scope, dw, convKernelToOnnx(pk.data, pk.shape), [cout, cin * mult, 1, 1], bias, pwAttrs, [null, geo.outH, geo.outW, cout], { weight: 'pointwise_kernel', kerasShape: pk.shape, toKeras: onnxToConvKernel })];
};

function pooling(op: 'MaxPool' | 'AveragePool'): LayerConverter {
  return (ctx, layer, inputs) => {
    checkChannelsLast(layer);
    const x = ctx.nchw(one(layer, inputs));
    const cfg = layer.config;
    const k = pair(cfg.pool_size, 2);
    const s = pair(cfg.strides ?? cfg.pool_size, 2);
    const geo = windowGeometry(layer, x.shape[1]!, x.shape[2]!, k, s, [1, 1], cfg.padding ?? 'valid');
    const attrs: Record<string, any> = { ...geo.attrs, kernel_shape: k, strides: s };
    if (op === 'AveragePool') attrs.count_include_pad = 0;
    return [{ name: ctx.g.node(op, [x.name], attrs, layer.name), shape: [null, geo.outH, geo.outW, x.shape[3]!], layout: 'nchw' }];
  };
}

function globalPooling(op: 'GlobalAveragePool' | 'GlobalMaxPool'): LayerConverter {
  return (ctx, layer, inputs) => {
    checkChannelsLast(layer);
    const x = ctx.nchw(one(layer, inputs));
    const c = x.shape[3]!;
    const pooled = ctx.g.node(op, [x.name], {}, layer.name);
    if (layer.config.keepdims) return [{ name: pooled, shape: [null, 1, 1, c], layout: 'nchw' }];
    return [{ name: ctx.g.node('Flatten', [pooled], { axis: 1 }, `${layer.name}_flatten`), shape: [null, c], layout: 'nhwc' }];
  };
}

function padPairs(p: any): [[number, number], [number, number]] {
  if (typeof p === 'number') return [[p, p], [p, p]];
  const a = p[0];
  const b = p[1];
  return [typeof a === 'number' ? [a, a] : [a[0], a[1]], typeof b === 'number' ? [b, b] : [b[0], b[1]]];
}

const zeroPadding2d: LayerConverter = (ctx, layer, inputs) => {
  checkChannelsLast(layer);
  const x = ctx.nchw(one(layer, inputs));
  const [[t, b], [l, r]] = padPairs(layer.config.padding ?? 1);
  const pads = ctx.g.int64Tensor(`${layer.name}/pads`, [0, 0, t, l, 0, 0, b, r]);
  const h = x.shape[1] === null ? null : x.shape[1]! + t + b;
  const w = x.shape[2] === null ? null : x.shape[2]! + l + r;
  return [{ name: ctx.g.node('Pad', [x.name, pads], { mode: 'constant' }, layer.name), shape: [null, h, w, x.shape[3]!], layout: 'nchw' }];
};

const cropping2d: LayerConverter = (ctx, layer, inputs) => {
  checkChannelsLast(layer);
  const x = ctx.nchw(one(layer, inputs));
  const [[t, b], [l, r]] = padPairs(layer.config.cropping ?? 0);
  const BIG = 2 ** 53 - 1;
  const starts = ctx.g.int64Tensor(`${layer.name}/starts`, [t, l]);
  const ends = ctx.g.int64Tensor(`${layer.name}/ends`, [b ? -b : BIG, r ? -r : BIG]);
  const axes = ctx.g.int64Tensor(`${layer.name}/axes`, [2, 3]);
  const h = x.shape[1] === null ? null : x.shape[1]! - t - b;
  const w = x.shape[2] === null ? null : x.shape[2]! - l - r;
  return [{ name: ctx.g.node('Slice', [x.name, starts, ends, axes], {}, layer.name), shape: [null, h, w, x.shape[3]!], layout: 'nchw' }];
};

const upSampling2d: LayerConverter = (ctx, layer, inputs) => {
  checkChannelsLast(layer);
  const x = ctx.nchw(one(layer, inputs));
  const [sh, sw] = pair(layer.config.size, 2);
  const interp = layer.config.interpolation ?? 'nearest';
  if (interp !== 'nearest' && interp !== 'bilinear') throw new UnsupportedModelError(`layer ${layer.name}: interpolation '${interp}' is not supported`);
  const scales = ctx.g.floatTensor(`${layer.name}/scales`, new Float32Array([1, 1, sh, sw]), [4]);
  const attrs: Record<string, any> = { mode: interp === 'nearest' ? 'nearest' : 'linear', coordinate_transformation_mode: 'asymmetric' };
  if (interp === 'nearest') attrs.nearest_mode = 'floor';
  const h = x.shape[1] === null ? null : x.shape[1]! * sh;
  const w = x.shape[2] === null ? null : x.shape[2]! * sw;
  return [{ name: ctx.g.node('Resize', [x.name, '', scales], attrs, layer.name), shape: [null, h, w, x.shape[3]!], layout: 'nchw' }];
};

export const convLayers: Record<string, LayerConverter> = {
  Conv2D: conv2d,
  DepthwiseConv2D: depthwiseConv2d,
  SeparableConv2D: separableConv2d,
  MaxPooling2D: pooling('MaxPool'),
  MaxPool2D: pooling('MaxPool'),
  AveragePooling2D: pooling('AveragePool'),
  AvgPool2D: pooling('AveragePool'),
  GlobalAveragePooling2D: globalPooling('GlobalAveragePool'),
  GlobalMaxPooling2D: globalPooling('GlobalMaxPool'),
  ZeroPadding2D: zeroPadding2d,
  Cropping2D: cropping2d,
  UpSampling2D: upSampling2d,
};
