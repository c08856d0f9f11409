/** Shared state and helpers for converting Keras layers to ONNX nodes. */
import type { NamedWeight } from '../backbones/layers-model.js';
import { OnnxGraph } from './graph.js';
import type { LayerNode } from '../backbones/keras-graph.js';
import { UnsupportedModelError } from '../backbones/keras-graph.js';

/** 'nhwc' is Keras' own layout; 4-D tensors produced by convolutions are kept 'nchw' (ONNX's) until a layer needs Keras' order. */
export type Layout = 'nhwc' | 'nchw';

export interface Value {
  name: string;
  /** Keras shape (channels last), batch first as null. */
  shape: Array<number | null>;
  layout: Layout;
}

export class WeightStore {
  readonly used = new Set<string>();
  constructor(private readonly weights: Map<string, NamedWeight>) {}

  find(layer: string, weight: string): NamedWeight | undefined {
    const exact = this.weights.get(`${layer}/${weight}`);
    if (exact) {
      this.used.add(exact.name);
      return exact;
    }
    // TF 2.2+ may scope a weight as layer/cell/weight; TF.js accepts that form too.
    for (const [k, w] of this.weights) {
      const parts = k.split('/');
      if (parts[0] === layer && parts[parts.length - 1] === weight) {
        this.used.add(k);
        return w;
      }
    }
    return undefined;
  }

  get(layer: string, weight: string): NamedWeight {
    const w = this.find(layer, weight);
    if (!w) throw new UnsupportedModelError(`layer ${layer}: weight '${weight}' not found in the weights manifest`);
    return w;
  }
}

/** A trainable weight: the ONNX tensor that holds it, and how to turn its ONNX layout back into Keras'. */
export interface ParamBinding {
  /** Graph input name (ONNX layout). */
  onnxName: string;
  /** The weight's name in the TF.js weights manifest (e.g. conv2d/kernel). */
  kerasName: string;
  dims: number[];
  /** Initial value in ONNX layout. */
  initial: Float32Array;
  toKeras: (onnx: Float32Array) => Float32Array;
}

/** Training-mode conversion: which weights are trained; Dropout becomes a multiply by a mask input. */
export interface TrainingConversion {
  trainable: (kerasWeightName: string) => boolean;
  /** Dropout as a multiply by a mask input (default true; false for evaluation graphs). */
  dropout?: boolean;
  /**
   * How the live BatchNormalization layers (gamma or beta trained, or listed by `bnLive`) normalise: 'batch'
   * (default, training graphs) with the statistics of the batch, which become graph outputs; 'moving'
   * (evaluation graphs) with their moving mean and variance, fed as graph inputs. Other BatchNormalization
   * layers are constants, folded into the convolution before them where possible.
   */
  batchNorm?: 'batch' | 'moving';
  /** BatchNormalization layers whose statistics are live although gamma and beta are not trained (re-estimation). */
  bnLive?: (layer: string) => boolean;
}

/** A BatchNormalization layer's moving statistic, fed as a graph input ('moving' mode). */
export interface StateBinding extends ParamBinding {
  layer: string;
  weight: 'moving_mean' | 'moving_variance';
}

/** A live BatchNormalization layer's batch statistics ('batch' mode): graph outputs with one value per channel. */
export interface BatchStatistics {
  layer: string;
  mean: string;
  variance: string;
  channels: number;
  /** Values per channel per sample (the spatial size), to turn the batch variance into an unbiased estimate. */
  perSample: number;
  /** The layer's own momentum for its moving statistics (Keras' config, 0.99 when absent). */
  momentum: number;
}

export interface DropoutMask {
  /** Graph input name; feed 0 or 1/(1-rate) per element. */
  name: string;
  rate: number;
  layer: string;
  /** The value whose shape the mask has. */
  like: string;
}

const identityKeras = (d: Float32Array) => d;

export class ConvertContext {
  /** BatchNormalization layers folded into the convolution before them. */
  readonly absorbed = new Set<string>();
  private readonly layoutMemo = new Map<string, Value>();
  readonly params: ParamBinding[] = [];
  readonly dropoutMasks: DropoutMask[] = [];
  readonly state: StateBinding[] = [];
  readonly batchStats: BatchStatistics[] = [];

  constructor(
    readonly g: OnnxGraph,
    readonly weights: WeightStore,
    readonly training?: TrainingConversion,
  ) {}

  /**
   * An initializer for a Keras weight (already in ONNX layout); when training and the weight is trainable,
   * it is recorded as a parameter (the caller turns those into graph inputs).
   */
  weightTensor(layer: string, weight: string, hint: string, data: Float32Array, dims: number[], toKeras: (d: Float32Array) => Float32Array = identityKeras): string {
    const name = this.g.floatTensor(hint, data, dims);
    const kerasName = this.weights.get(layer, weight).name;
    if (this.training?.trainable(kerasName)) this.params.push({ onnxName: name, kerasName, dims, initial: new Float32Array(data), toKeras });
    return name;
  }

  /** A BatchNormalization layer's moving statistic as a graph input (the caller turns it into one). */
  stateTensor(layer: string, weight: StateBinding['weight'], data: Float32Array, dims: number[]): string {
    const name = this.g.floatTensor(`${layer}/${weight}`, data, dims);
    this.state.push({ onnxName: name, kerasName: this.weights.get(layer, weight).name, dims, initial: new Float32Array(data), toKeras: identityKeras, layer, weight });
    return name;
  }

  /** Whether a BatchNormalization layer normalises with live statistics (its gamma/beta trained, or re-estimated). */
  bnLive(layer: string): boolean {
    if (!this.training) return false;
    return this.layerTrained(layer, ['gamma', 'beta']) || Boolean(this.training.bnLive?.(layer));
  }

  /** Whether any weight of this layer is trained (then nothing may be folded into it). */
  layerTrained(layer: string, weights: string[]): boolean {
    if (!this.training) return false;
    return weights.some((w) => {
      const found = this.weights.find(layer, w);
      return found ? this.training!.trainable(found.name) : false;
    });
  }

  /** Returns `v` in the requested layout, adding (and memoising) a Transpose when needed. */
  layout(v: Value, want: Layout): Value {
    if (v.shape.length !== 4 || v.layout === want) return v;
    const key = `${v.name}->${want}`;
    const memo = this.layoutMemo.get(key);
    if (memo) return memo;
    const perm = want === 'nchw' ? [0, 3, 1, 2] : [0, 2, 3, 1];
    const out: Value = { name: this.g.node('Transpose', [v.name], { perm }, `${v.name}_to_${want}`), shape: v.shape, layout: want };
    this.layoutMemo.set(key, out);
    return out;
  }

  nchw(v: Value): Value {
    if (v.shape.length !== 4) throw new UnsupportedModelError(`expected a 4-D image tensor, got shape [${v.shape}]`);
    return this.layout(v, 'nchw');
  }

  nhwc(v: Value): Value {
    return this.layout(v, 'nhwc');
  }

  /** The ONNX axis of Keras axis `axis` (negative allowed) of value v. */
  axis(v: Value, axis: number): number {
    const rank = v.shape.length;
    const a = axis < 0 ? axis + rank : axis;
    if (v.layout === 'nchw' && rank === 4) return [0, 2, 3, 1][a]!;
    return a;
  }

  /** Broadcast shape for a per-channel constant applied to v. */
  channelShape(v: Value, channels: number): number[] {
    if (v.layout === 'nchw' && v.shape.length === 4) return [1, channels, 1, 1];
    return [channels];
  }

  unary(op: string, v: Value, hint: string, attrs: Record<string, any> = {}): Value {
    return { ...v, name: this.g.node(op, [v.name], attrs, hint) };
  }

  binary(op: string, a: Value, b: string, hint: string): Value {
    return { ...a, name: this.g.node(op, [a.name, b], {}, hint) };
  }

  clip(v: Value, min: number, max: number | undefined, hint: string): Value {
    const inputs = [v.name, this.g.scalar(`${hint}_min`, min)];
    if (max !== undefined && Number.isFinite(max)) inputs.push(this.g.scalar(`${hint}_max`, max));
    return { ...v, name: this.g.node('Clip', inputs, {}, hint) };
  }

  /** Applies a Keras activation by name. */
  activation(v: Value, act: string | null | undefined, hint: string): Value {
    const g = this.g;
    switch (act ?? 'linear') {
      case 'linear':
        return v;
      case 'relu':
        return this.unary('Relu', v, hint);
      case 'relu6':
        return this.clip(v, 0, 6, hint);
      case 'sigmoid':
        return this.unary('Sigmoid', v, hint);
      case 'tanh':
        return this.unary('Tanh', v, hint);
      case 'softmax':
        return this.unary('Softmax', v, hint, { axis: this.axis(v, -1) });
      case 'swish':
      case 'silu': {
        const s = g.node('Sigmoid', [v.name], {}, `${hint}_sigmoid`);
        return this.binary('Mul', v, s, hint);
      }
      case 'hard_swish':
      case 'hardswish':
        return this.unary('HardSwish', v, hint);
      case 'hard_sigmoid':
      case 'hardSigmoid':
        return this.unary('HardSigmoid', v, hint, { alpha: { float: 0.2 }, beta: { float: 0.5 } });
      case 'elu':
        return this.unary('Elu', v, hint, { alpha: { float: 1 } });
      case 'selu':
        return this.unary('Selu', v, hint);
      case 'softplus':
        return this.unary('Softplus', v, hint);
      case 'softsign':
        return this.unary('Softsign', v, hint);
      case 'exponential':
        return this.unary('Exp', v, hint);
      case 'gelu': {
        const scaled = g.node('Div', [v.name, g.scalar(`${hint}_sqrt2`, Math.SQRT2)], {}, `${hint}_div`);
        const erf = g.node('Erf', [scaled], {}, `${hint}_erf`);
        const onePlus = g.node('Add', [erf, g.scalar(`${hint}_one`, 1)], {}, `${hint}_add`);
        const half = g.node('Mul', [v.name, g.scalar(`${hint}_half`, 0.5)], {}, `${hint}_half`);
        return { ...v, name: g.node('Mul', [half, onePlus], {}, hint) };
      }
      case 'gelu_new': {
        // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        const cube = g.node('Mul', [v.name, g.node('Mul', [v.name, v.name], {}, `${hint}_sq`)], {}, `${hint}_cube`);
        const inner = g.node('Add', [v.name, g.node('Mul', [cube, g.scalar(`${hint}_c`, 0.044715)], {}, `${hint}_cubec`)], {}, `${hint}_inner`);
        const th = g.node('Tanh', [g.node('Mul', [inner, g.scalar(`${hint}_k`, Math.sqrt(2 / Math.PI))], {}, `${hint}_scaled`)], {}, `${hint}_tanh`);
        const onePlus = g.node('Add', [th, g.scalar(`${hint}_one`, 1)], {}, `${hint}_add`);
        const half = g.node('Mul', [v.name, g.scalar(`${hint}_half`, 0.5)], {}, `${hint}_half`);
        return { ...v, name: g.node('Mul', [half, onePlus], {}, hint) };
      }
      case 'logSoftmax':
      case 'log_softmax':
        return this.unary('LogSoftmax', v, hint, { axis: this.axis(v, -1) });
      case 'mish': {
        const sp = g.node('Softplus', [v.name], {}, `${hint}_softplus`);
        const th = g.node('Tanh', [sp], {}, `${hint}_tanh`);
        return this.binary('Mul', v, th, hint);
      }
      default:
        throw new UnsupportedModelError(`activation '${act}' is not supported by the ONNX exporter`);
    }
  }
}

export type LayerConverter = (ctx: ConvertContext, layer: LayerNode, inputs: Value[], scope: Scope) => Value[];

/** What a converter may ask about the (sub)model it sits in. */
export interface Scope {
  /** The layers that consume `layer`'s outputs, and how many uses there are in all (model outputs count). */
  consumers(layer: string): { count: number; consumers: LayerNode[] };
}

export function one(layer: LayerNode, inputs: Value[]): Value {
  if (inputs.length !== 1) throw new UnsupportedModelError(`layer ${layer.name} (${layer.className}) expects one input, got ${inputs.length}`);
  return inputs[0]!;
}

export function pair(x: number | number[] | undefined, dflt: number): [number, number] {
  if (x === undefined || x === null) return [dflt, dflt];
  if (typeof x === 'number') return [x, x];
  return [x[0]!, x[1] ?? x[0]!];
}
