/**
 * Keras applications rebuilt with tfjs-layers, with Keras' exact layer names and structure
 * (keras/src/applications/{vgg16,resnet,mobilenet,mobilenet_v2}.py), so the official .h5 weight files load by name.
 */
import type * as TF from '@tensorflow/tfjs';

type ST = TF.SymbolicTensor;

export type KerasFamily = 'vgg16' | 'resnet50' | 'mobilenet_v2' | 'mobilenet_v1';

export interface KerasAppSpec {
  family: KerasFamily;
  /** MobileNetV2 width: 0.35, 0.5, 0.75, 1.0, 1.3 or 1.4; MobileNet (v1) width: 0.25, 0.5, 0.75 or 1.0. */
  alpha?: number;
  includeTop: boolean;
  /** Square input size (224 by default; fixed at 224 with the top). */
  size?: number;
  classes?: number;
}

export const MOBILENET_V2_ALPHAS = [0.35, 0.5, 0.75, 1.0, 1.3, 1.4];
/** The widths Keras publishes ImageNet weights for (keras/src/applications/mobilenet.py). */
export const MOBILENET_V1_ALPHAS = [0.25, 0.5, 0.75, 1.0];

/** Weights are always loaded from Keras files, so layers start at zero (much faster than random init for VGG16). */
const Z = { kernelInitializer: 'zeros', biasInitializer: 'zeros' } as const;
const ZD = { depthwiseInitializer: 'zeros', biasInitializer: 'zeros' } as const;

function apply(layer: TF.layers.Layer, x: ST | ST[]): ST {
  return layer.apply(x) as ST;
}

function vgg16(tf: typeof TF, s: KerasAppSpec): TF.LayersModel {
  const size = s.includeTop ? 224 : (s.size ?? 224);
  const input = tf.input({ shape: [size, size, 3], name: 'input_1' });
  let x: ST = input;
  const blocks: Array<[number, number]> = [
    [64, 2],
    [128, 2],
    [256, 3],
    [512, 3],
    [512, 3],
  ];
  blocks.forEach(([filters, convs], b) => {
    for (let c = 1; c <= convs; c++) x = apply(tf.layers.conv2d({ ...Z, filters, kernelSize: 3, activation: 'relu', padding: 'same', name: `block${b + 1}_conv${c}` }), x);
    x = apply(tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `block${b + 1}_pool` }), x);
  });
  if (s.includeTop) {
    x = apply(tf.layers.flatten({ name: 'flatten' }), x);
    x = apply(tf.layers.dense({ ...Z, units: 4096, activation: 'relu', name: 'fc1' }), x);
    x = apply(tf.layers.dense({ ...Z, units: 4096, activation: 'relu', name: 'fc2' }), x);
    x = apply(tf.layers.dense({ ...Z, units: s.classes ?? 1000, activation: 'softmax', name: 'predictions' }), x);
  }
  return tf.model({ inputs: input, outputs: x, name: 'vgg16' });
}

function resnet50(tf: typeof TF, s: KerasAppSpec): TF.LayersModel {
  const size = s.includeTop ? 224 : (s.size ?? 224);
  const input = tf.input({ shape: [size, size, 3], name: 'input_1' });
  const bn = (name: string) => tf.layers.batchNormalization({ axis: 3, epsilon: 1.001e-5, name });
  let x = apply(tf.layers.zeroPadding2d({ padding: [[3, 3], [3, 3]], name: 'conv1_pad' }), input);
  x = apply(tf.layers.conv2d({ ...Z, filters: 64, kernelSize: 7, strides: 2, useBias: true, name: 'conv1_conv' }), x);
  x = apply(bn('conv1_bn'), x);
  x = apply(tf.layers.activation({ activation: 'relu', name: 'conv1_relu' }), x);
  x = apply(tf.layers.zeroPadding2d({ padding: [[1, 1], [1, 1]], name: 'pool1_pad' }), x);
  x = apply(tf.layers.maxPooling2d({ poolSize: 3, strides: 2, name: 'pool1_pool' }), x);
  const block = (inp: ST, filters: number, stride: number, convShortcut: boolean, name: string): ST => {
    let shortcut = inp;
    if (convShortcut) {
      shortcut = apply(tf.layers.conv2d({ ...Z, filters: 4 * filters, kernelSize: 1, strides: stride, name: `${name}_0_conv` }), inp);
      shortcut = apply(bn(`${name}_0_bn`), shortcut);
    }
    let y = apply(tf.layers.conv2d({ ...Z, filters, kernelSize: 1, strides: stride, name: `${name}_1_conv` }), inp);
    y = apply(bn(`${name}_1_bn`), y);
    y = apply(tf.layers.activation({ activation: 'relu', name: `${name}_1_relu` }), y);
    y = apply(tf.layers.conv2d({ ...Z, filters, kernelSize: 3, padding: 'same', name: `${name}_2_conv` }), y);
    y = apply(bn(`${name}_2_bn`), y);
    y = apply(tf.layers.activation({ activation: 'relu', name: `${name}_2_relu` }), y);
    y = apply(tf.layers.conv2d({ ...Z, filters: 4 * filters, kernelSize: 1, name: `${name}_3_conv` }), y);
    y = apply(bn(`${name}_3_bn`), y);
    y = apply(tf.layers.add({ name: `${name}_add` }), [shortcut, y]);
    return apply(tf.layers.activation({ activation: 'relu', name: `${name}_out` }), y);
  };
  const stack = (inp: ST, filters: number, blocks: number, stride1: number, name: string): ST => {
    let y = block(inp, filters, stride1, true, `${name}_block1`);
    for (let i = 2; i <= blocks; i++) y = block(y, filters, 1, false, `${name}_block${i}`);
    return y;
  };
  x = stack(x, 64, 3, 1, 'conv2');
  x = stack(x, 128, 4, 2, 'conv3');
  x = stack(x, 256, 6, 2, 'conv4');
  x = stack(x, 512, 3, 2, 'conv5');
  if (s.includeTop) {
    x = apply(tf.layers.globalAveragePooling2d({ name: 'avg_pool' }), x);
    x = apply(tf.layers.dense({ ...Z, units: s.classes ?? 1000, activation: 'softmax', name: 'predictions' }), x);
  }
  return tf.model({ inputs: input, outputs: x, name: 'resnet50' });
}

export function makeDivisible(v: number, divisor = 8, minValue?: number): number {
  const min = minValue ?? divisor;
  let nv = Math.max(min, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (nv < 0.9 * v) nv += divisor;
  return nv;
}

function mobilenetV2(tf: typeof TF, s: KerasAppSpec): TF.LayersModel {
  const alpha = s.alpha ?? 1.0;
  if (!MOBILENET_V2_ALPHAS.includes(alpha)) throw new Error(`MobileNetV2 alpha must be one of ${MOBILENET_V2_ALPHAS.join(', ')}, got ${alpha}`);
  const size = s.size ?? 224;
  const input = tf.input({ shape: [size, size, 3], name: 'input_1' });
  const bn = (name: string) => tf.layers.batchNormalization({ axis: -1, epsilon: 1e-3, momentum: 0.999, name });
  const relu6 = (name: string) => tf.layers.reLU({ maxValue: 6, name });
  let x = apply(tf.layers.conv2d({ ...Z, filters: makeDivisible(32 * alpha, 8), kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'Conv1' }), input);
  x = apply(bn('bn_Conv1'), x);
  x = apply(relu6('Conv1_relu'), x);
  const block = (inp: ST, expansion: number, stride: number, filters: number, id: number): ST => {
    const inChannels = inp.shape[inp.shape.length - 1] as number;
    const pointwise = makeDivisible(Math.trunc(filters * alpha), 8);
    let y = inp;
    let prefix = `block_${id}_`;
    if (id) {
      y = apply(tf.layers.conv2d({ ...Z, filters: expansion * inChannels, kernelSize: 1, padding: 'same', useBias: false, name: `${prefix}expand` }), y);
      y = apply(bn(`${prefix}expand_BN`), y);
      y = apply(relu6(`${prefix}expand_relu`), y);
    } else {
      prefix = 'expanded_conv_';
    }
    if (stride === 2) {
      // imagenet_utils.correct_pad for kernel 3 on an even size: ((0, 1), (0, 1))
      const h = y.shape[1] as number;
      const adjust = h % 2 === 0 ? [1, 1] : [0, 0];
      y = apply(tf.layers.zeroPadding2d({ padding: [[1 - adjust[0]!, 1], [1 - adjust[1]!, 1]], name: `${prefix}pad` }), y);
    }
    y = apply(tf.layers.depthwiseConv2d({ ...ZD, kernelSize: 3, strides: stride, useBias: false, padding: stride === 1 ? 'same' : 'valid', name: `${prefix}depthwise` }), y);
    y = apply(bn(`${prefix}depthwise_BN`), y);
    y = apply(relu6(`${prefix}depthwise_relu`), y);
    y = apply(tf.layers.conv2d({ ...Z, filters: pointwise, kernelSize: 1, padding: 'same', useBias: false, name: `${prefix}project` }), y);
    y = apply(bn(`${prefix}project_BN`), y);
    if (inChannels === pointwise && stride === 1) return apply(tf.layers.add({ name: `${prefix}add` }), [inp, y]);
    return y;
  };
  const cfg: Array<[number, number, number]> = [
    [16, 1, 1],
    [24, 2, 6], [24, 1, 6],
    [32, 2, 6], [32, 1, 6], [32, 1, 6],
    [64, 2, 6], [64, 1, 6], [64, 1, 6], [64, 1, 6],
    [96, 1, 6], [96, 1, 6], [96, 1, 6],
    [160, 2, 6], [160, 1, 6], [160, 1, 6],
    [320, 1, 6],
  ];
  cfg.forEach(([filters, stride, expansion], id) => (x = block(x, expansion, stride, filters, id)));
  const last = alpha > 1.0 ? makeDivisible(1280 * alpha, 8) : 1280;
  x = apply(tf.layers.conv2d({ ...Z, filters: last, kernelSize: 1, useBias: false, name: 'Conv_1' }), x);
  x = apply(bn('Conv_1_bn'), x);
  x = apply(relu6('out_relu'), x);
  if (s.includeTop) {
    x = apply(tf.layers.globalAveragePooling2d({ name: 'global_average_pooling2d' }), x);
    x = apply(tf.layers.dense({ ...Z, units: s.classes ?? 1000, activation: 'softmax', name: 'predictions' }), x);
  }
  return tf.model({ inputs: input, outputs: x, name: `mobilenetv2_${alpha.toFixed(2)}_${size}` });
}

/**
 * MobileNet (v1), keras/src/applications/mobilenet.py: a 3x3 stem then 13 depthwise-separable blocks
 * (conv_dw_N + BN + ReLU6, conv_pw_N + BN + ReLU6; stride-2 blocks pad ((0,1),(0,1)) first), no biases in the body.
 * With the top: global average pooling kept 4-d (reshape_1), dropout, a 1x1 conv_preds, reshape_2, softmax.
 * (The older Keras 2.1 layout of the TF.js copies uses padding 'same' and Activation('relu6') layers instead:
 * the same function and the same weight names.)
 */
function mobilenetV1(tf: typeof TF, s: KerasAppSpec): TF.LayersModel {
  const alpha = s.alpha ?? 1.0;
  if (!MOBILENET_V1_ALPHAS.includes(alpha)) throw new Error(`MobileNet (v1) alpha must be one of ${MOBILENET_V1_ALPHAS.join(', ')}, got ${alpha}`);
  const size = s.includeTop ? 224 : (s.size ?? 224);
  const input = tf.input({ shape: [size, size, 3], name: 'input_1' });
  const bn = (name: string) => tf.layers.batchNormalization({ axis: -1, epsilon: 1e-3, momentum: 0.99, name });
  const relu6 = (name: string) => tf.layers.reLU({ maxValue: 6, name });
  let x = apply(tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]], name: 'conv1_pad' }), input);
  x = apply(tf.layers.conv2d({ ...Z, filters: Math.trunc(32 * alpha), kernelSize: 3, strides: 2, padding: 'valid', useBias: false, name: 'conv1' }), x);
  x = apply(bn('conv1_bn'), x);
  x = apply(relu6('conv1_relu'), x);
  const blocks: Array<[number, number]> = [
    [64, 1], [128, 2], [128, 1], [256, 2], [256, 1], [512, 2],
    [512, 1], [512, 1], [512, 1], [512, 1], [512, 1],
    [1024, 2], [1024, 1],
  ];
  blocks.forEach(([filters, stride], i) => {
    const id = i + 1;
    if (stride === 2) x = apply(tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]], name: `conv_pad_${id}` }), x);
    x = apply(tf.layers.depthwiseConv2d({ ...ZD, kernelSize: 3, strides: stride, padding: stride === 1 ? 'same' : 'valid', useBias: false, name: `conv_dw_${id}` }), x);
    x = apply(bn(`conv_dw_${id}_bn`), x);
    x = apply(relu6(`conv_dw_${id}_relu`), x);
    x = apply(tf.layers.conv2d({ ...Z, filters: Math.trunc(filters * alpha), kernelSize: 1, padding: 'same', useBias: false, name: `conv_pw_${id}` }), x);
    x = apply(bn(`conv_pw_${id}_bn`), x);
    x = apply(relu6(`conv_pw_${id}_relu`), x);
  });
  if (s.includeTop) {
    const classes = s.classes ?? 1000;
    x = apply(tf.layers.globalAveragePooling2d({ name: 'global_average_pooling2d' }), x);
    x = apply(tf.layers.reshape({ targetShape: [1, 1, Math.trunc(1024 * alpha)], name: 'reshape_1' }), x);
    x = apply(tf.layers.dropout({ rate: 1e-3, name: 'dropout' }), x);
    x = apply(tf.layers.conv2d({ ...Z, filters: classes, kernelSize: 1, padding: 'same', name: 'conv_preds' }), x);
    x = apply(tf.layers.reshape({ targetShape: [classes], name: 'reshape_2' }), x);
    x = apply(tf.layers.activation({ activation: 'softmax', name: 'predictions' }), x);
  }
  return tf.model({ inputs: input, outputs: x, name: `mobilenet_${alpha.toFixed(2)}_${size}` });
}

/** Builds a Keras application (random weights) with Keras' layer names. */
export function buildKerasApp(tf: typeof TF, s: KerasAppSpec): TF.LayersModel {
  switch (s.family) {
    case 'vgg16':
      return vgg16(tf, s);
    case 'resnet50':
      return resnet50(tf, s);
    case 'mobilenet_v2':
      return mobilenetV2(tf, s);
    case 'mobilenet_v1':
      return mobilenetV1(tf, s);
    default:
      throw new Error(`unknown Keras application family '${s.family as string}'`);
  }
}
