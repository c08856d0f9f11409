/**
 * TF.js layers model → ONNX: onnxruntime output vs TF.js output on random inputs, for every supported layer
 * type (tiny models built in code) and for the real MobileNetV2 and Teachable Machine models.
 * Tolerance: max |diff| <= 1e-4 * max |tfjs output| + 1e-5.
 */
import * as ort from 'onnxruntime-node';
import type * as TF from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { readLayersModel, type LayersModelArtifacts } from '../src/backbones/layers-model.js';
import { layersModelToOnnx, UnsupportedModelError } from '../src/onnx/convert.js';
import { decodeModel } from '../src/onnx/proto.js';
import { getTf } from '../src/runtime/tfjs.js';
import { Rng } from '../src/util/rng.js';
import { MOBILENET, TM_EXPORT, hasShared, saveArtifacts } from './helpers.js';

let tf: typeof TF;
beforeAll(async () => {
  tf = await getTf();
});

function randomInput(shape: number[], seed: number, scale = 2): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (rng.next() * 2 - 1) * scale);
}

async function runOnnx(bytes: Uint8Array, x: Float32Array, shape: number[]): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', x, shape) });
  await s.release();
  return out[s.outputNames[0]!]!.data as Float32Array;
}

/** Converts, runs both, and checks the tolerance; returns the worst relative error for the record. */
async function parity(a: LayersModelArtifacts, inputShape: number[], seed = 1, scale = 2): Promise<{ maxDiff: number; maxAbs: number; opTypes: string[] }> {
  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: a.modelTopology as any, weightSpecs: a.weightSpecs as any, weightData: a.weightData }));
  const x = randomInput(inputShape, seed, scale);
  const want = (tf.tidy(() => model.predict(tf.tensor(x, inputShape)) as TF.Tensor).dataSync() as Float32Array).slice();
  model.dispose();
  const exp = layersModelToOnnx(a, { inputShape: [null, ...inputShape.slice(1)] });
  const got = await runOnnx(exp.bytes, x, inputShape);
  expect(got.length).toBe(want.length);
  let maxDiff = 0;
  let maxAbs = 0;
  for (let i = 0; i < want.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!));
    maxAbs = Math.max(maxAbs, Math.abs(want[i]!));
  }
  expect(Number.isFinite(maxAbs)).toBe(true);
  expect(maxDiff, `max diff ${maxDiff} vs max |y| ${maxAbs}`).toBeLessThanOrEqual(1e-4 * maxAbs + 1e-5);
  return { maxDiff, maxAbs, opTypes: exp.opTypes };
}

let seedCounter = 10;
const init = () => tf.initializers.randomNormal({ mean: 0, stddev: 0.5, seed: seedCounter++ });

/** Builds a functional model from `build` on an input of `shape` (no batch) and saves it. */
async function fn(shape: number[], build: (x: TF.SymbolicTensor) => TF.SymbolicTensor | TF.SymbolicTensor[]): Promise<LayersModelArtifacts> {
  const input = tf.input({ shape });
  const out = build(input);
  const m = tf.model({ inputs: input, outputs: out as TF.SymbolicTensor });
  // give BatchNormalization non-trivial statistics so folding is really exercised
  for (const layer of m.layers) {
    if (layer.getClassName() === 'BatchNormalization') {
      layer.setWeights(layer.getWeights().map((w, i) => tf.add(tf.randomUniform(w.shape, 0.1, 1, 'float32', seedCounter++), i === 3 ? 0.5 : 0)));
    }
  }
  const a = await saveArtifacts(tf, m);
  m.dispose();
  return a;
}

const apply = (layer: TF.layers.Layer, x: TF.SymbolicTensor | TF.SymbolicTensor[]) => layer.apply(x) as TF.SymbolicTensor;

describe('ONNX export parity, one layer type at a time', () => {
  const img = [2, 9, 11, 3];
  const cases: Array<[string, number[], (x: TF.SymbolicTensor) => TF.SymbolicTensor]> = [
    ['Conv2D valid stride 1 + bias', img, (x) => apply(tf.layers.conv2d({ filters: 4, kernelSize: 3, kernelInitializer: init(), biasInitializer: init() }), x)],
    ['Conv2D same stride 2, no bias, relu', img, (x) => apply(tf.layers.conv2d({ filters: 5, kernelSize: 3, strides: 2, padding: 'same', useBias: false, activation: 'relu', kernelInitializer: init() }), x)],
    ['Conv2D same stride 2, even kernel', img, (x) => apply(tf.layers.conv2d({ filters: 3, kernelSize: [2, 4], strides: 2, padding: 'same', kernelInitializer: init(), biasInitializer: init() }), x)],
    ['Conv2D dilation 2 same', img, (x) => apply(tf.layers.conv2d({ filters: 4, kernelSize: 3, dilationRate: 2, padding: 'same', kernelInitializer: init() }), x)],
    ['DepthwiseConv2D valid', img, (x) => apply(tf.layers.depthwiseConv2d({ kernelSize: 3, depthwiseInitializer: init(), biasInitializer: init() }), x)],
    ['DepthwiseConv2D same stride 2, multiplier 2', img, (x) => apply(tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same', depthMultiplier: 2, depthwiseInitializer: init() }), x)],
    ['SeparableConv2D same', img, (x) => apply(tf.layers.separableConv2d({ filters: 6, kernelSize: 3, padding: 'same', depthwiseInitializer: init(), pointwiseInitializer: init(), biasInitializer: init() }), x)],
    ['SeparableConv2D valid stride 2, relu', img, (x) => apply(tf.layers.separableConv2d({ filters: 4, kernelSize: 3, strides: 2, activation: 'relu', depthwiseInitializer: init(), pointwiseInitializer: init() }), x)],
    ['Conv2D + BatchNormalization (folded)', img, (x) => apply(tf.layers.batchNormalization({}), apply(tf.layers.conv2d({ filters: 4, kernelSize: 3, kernelInitializer: init() }), x))],
    ['BatchNormalization on input (not folded)', img, (x) => apply(tf.layers.batchNormalization({ epsilon: 0.01 }), x)],
    ['ReLU max 6', img, (x) => apply(tf.layers.reLU({ maxValue: 6 }), apply(tf.layers.conv2d({ filters: 3, kernelSize: 1, kernelInitializer: tf.initializers.constant({ value: 3 }) }), x))],
    ['LeakyReLU', img, (x) => apply(tf.layers.leakyReLU({ alpha: 0.2 }), x)],
    ['ELU layer', img, (x) => apply(tf.layers.elu({}), x)],
    ['ThresholdedReLU', img, (x) => apply(tf.layers.thresholdedReLU({ theta: 0.5 }), x)],
    ['PReLU', img, (x) => apply(tf.layers.prelu({ alphaInitializer: init() }), x)],
    ['Softmax layer', [3, 7], (x) => apply(tf.layers.softmax({}), x)],
    ['ZeroPadding2D asymmetric', img, (x) => apply(tf.layers.zeroPadding2d({ padding: [[0, 1], [2, 1]] }), x)],
    ['Cropping2D', img, (x) => apply(tf.layers.cropping2D({ cropping: [[1, 2], [0, 3]] }), x)],
    ['UpSampling2D nearest', img, (x) => apply(tf.layers.upSampling2d({ size: [2, 3] }), x)],
    ['MaxPooling2D valid', img, (x) => apply(tf.layers.maxPooling2d({ poolSize: 2 }), x)],
    ['MaxPooling2D same 3/2', img, (x) => apply(tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }), x)],
    ['AveragePooling2D same 3/2 (padding not counted)', img, (x) => apply(tf.layers.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same' }), x)],
    ['AveragePooling2D valid', img, (x) => apply(tf.layers.averagePooling2d({ poolSize: [2, 3] }), x)],
    ['GlobalAveragePooling2D', img, (x) => apply(tf.layers.globalAveragePooling2d({}), apply(tf.layers.conv2d({ filters: 4, kernelSize: 3, kernelInitializer: init() }), x))],
    ['GlobalMaxPooling2D', img, (x) => apply(tf.layers.globalMaxPooling2d({}), x)],
    ['Flatten after conv (layout back to NHWC)', img, (x) => apply(tf.layers.flatten(), apply(tf.layers.conv2d({ filters: 4, kernelSize: 3, kernelInitializer: init() }), x))],
    ['Reshape after conv', img, (x) => apply(tf.layers.reshape({ targetShape: [-1, 4] }), apply(tf.layers.conv2d({ filters: 4, kernelSize: 3, kernelInitializer: init() }), x))],
    ['Permute', img, (x) => apply(tf.layers.permute({ dims: [3, 1, 2] }), x)],
    ['Dense on 4-D (last axis)', img, (x) => apply(tf.layers.dense({ units: 5, kernelInitializer: init(), biasInitializer: init() }), x)],
    ['Dropout (identity) + Dense softmax', [3, 7], (x) => apply(tf.layers.dense({ units: 4, activation: 'softmax', kernelInitializer: init() }), apply(tf.layers.dropout({ rate: 0.5 }), x))],
    ['BatchNormalization on 2-D', [3, 7], (x) => apply(tf.layers.batchNormalization({}), x)],
    ['LayerNormalization', [3, 7], (x) => apply(tf.layers.layerNormalization({ epsilon: 1e-3 }), apply(tf.layers.dense({ units: 6, kernelInitializer: init() }), x))],
    ['Rescaling', img, (x) => apply(tf.layers.rescaling({ scale: 1 / 127.5, offset: -1 }), x)],
  ];
  for (const [name, shape, build] of cases) {
    it(name, async () => {
      await parity(await fn(shape.slice(1), build), shape, seedCounter);
    });
  }

  const activations = ['relu', 'relu6', 'sigmoid', 'tanh', 'softmax', 'swish', 'hardSigmoid', 'elu', 'selu', 'softplus', 'softsign', 'linear', 'gelu', 'mish', 'logSoftmax'];
  for (const act of activations) {
    it(`Activation ${act}`, async () => {
      await parity(await fn([5, 6, 3], (x) => apply(tf.layers.activation({ activation: act as any }), apply(tf.layers.conv2d({ filters: 4, kernelSize: 1, kernelInitializer: init() }), x))), [2, 5, 6, 3], 3, 3);
    });
  }

  it('merge layers: Add, Multiply, Subtract, Average, Maximum, Minimum, Concatenate (NCHW and NHWC inputs mixed)', async () => {
    const a = await fn([6, 6, 3], (x) => {
      const c1 = apply(tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', kernelInitializer: init() }), x);
      const c2 = apply(tf.layers.conv2d({ filters: 4, kernelSize: 1, kernelInitializer: init() }), x);
      const d = apply(tf.layers.dense({ units: 4, kernelInitializer: init() }), x); // stays NHWC
      const parts = [
        apply(tf.layers.add(), [c1, c2, d]),
        apply(tf.layers.multiply(), [c1, d]),
        apply(tf.layers.average(), [c1, c2]),
        apply(tf.layers.maximum(), [c1, d]),
        apply(tf.layers.minimum(), [c2, c1]),
      ];
      return apply(tf.layers.concatenate({ axis: -1 }), parts);
    });
    const r = await parity(a, [2, 6, 6, 3]);
    expect(r.opTypes).toEqual(expect.arrayContaining(['Sum', 'Mul', 'Mean', 'Max', 'Min', 'Concat']));
  });

  it('Subtract (which tfjs cannot build, so the config is edited): 2x - x = x', async () => {
    const a = await fn([4, 5, 3], (x) => apply(tf.layers.add(), [apply(tf.layers.rescaling({ scale: 2 }), x), x]));
    const merge = a.modelTopology.config.layers.find((l: any) => l.class_name === 'Add');
    merge.class_name = 'Subtract';
    const x = randomInput([2, 4, 5, 3], 9);
    const y = await runOnnx(layersModelToOnnx(a).bytes, x, [2, 4, 5, 3]);
    expect(Math.max(...y.map((v, i) => Math.abs(v - x[i]!)))).toBeLessThan(1e-6);
  });

  it('activations tfjs cannot deserialise (gelu_new, hard_swish) match their formulas', async () => {
    const a = await fn([4, 3], (x) => apply(tf.layers.activation({ activation: 'linear' }), x));
    const act = a.modelTopology.config.layers.find((l: any) => l.class_name === 'Activation');
    const x = randomInput([2, 4, 3], 4, 4);
    const formulas: Record<string, (v: number) => number> = {
      gelu_new: (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))),
      hard_swish: (v) => (v * Math.min(6, Math.max(0, v + 3))) / 6,
    };
    for (const [name, f] of Object.entries(formulas)) {
      act.config.activation = name;
      const y = await runOnnx(layersModelToOnnx(a).bytes, x, [2, 4, 3]);
      y.forEach((v, i) => expect(Math.abs(v - f(x[i]!)), name).toBeLessThan(1e-5));
    }
  });

  it('nested Sequential inside a Sequential (the Teachable Machine layout)', async () => {
    const inner = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, kernelInitializer: init() }), tf.layers.globalAveragePooling2d({})] });
    const head = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3, activation: 'softmax', kernelInitializer: init() })] });
    const outer = tf.sequential({ layers: [inner, head] });
    const a = await saveArtifacts(tf, outer);
    await parity(a, [3, 8, 8, 3]);
  });

  it('folds BatchNormalization into the convolution before it', async () => {
    const a = await fn([8, 8, 3], (x) => apply(tf.layers.batchNormalization({}), apply(tf.layers.conv2d({ filters: 4, kernelSize: 3, useBias: false, kernelInitializer: init() }), x)));
    const exp = layersModelToOnnx(a);
    expect(exp.opTypes.filter((o) => o === 'Conv')).toHaveLength(1);
    expect(exp.opTypes).not.toContain('Mul');
    expect(exp.opTypes).not.toContain('BatchNormalization');
  });

  it('writes a valid ONNX model with NHWC input and metadata', async () => {
    const a = await fn([8, 8, 3], (x) => apply(tf.layers.globalAveragePooling2d({}), x));
    const exp = layersModelToOnnx(a, { metadata: { labels: '["a"]' } });
    const m = decodeModel(exp.bytes);
    expect(m.opset_import[0].version).toBe(17);
    expect(m.graph.input[0].name).toBe('input');
    expect(m.graph.input[0].type.tensor_type.shape.dim.map((d: any) => d.dim_value ?? d.dim_param)).toEqual(['batch', 8, 8, 3]);
    expect(m.graph.output[0].name).toBe('output');
    expect(Object.fromEntries(m.metadata_props.map((p: any) => [p.key, p.value]))).toEqual({ labels: '["a"]', layout: 'NHWC' });
  });

  it('rejects an unsupported layer with a message naming the layer and its class', async () => {
    const input = tf.input({ shape: [5, 3] });
    const m = tf.model({ inputs: input, outputs: apply(tf.layers.conv1d({ filters: 2, kernelSize: 2, name: 'my_conv1d' }), input) });
    const a = await saveArtifacts(tf, m);
    expect(() => layersModelToOnnx(a)).toThrow(UnsupportedModelError);
    expect(() => layersModelToOnnx(a)).toThrow(/layer 'my_conv1d' of class Conv1D is not supported/);
  });
});

describe('ONNX export parity on real models', () => {
  it.runIf(hasShared(MOBILENET, 'MobileNetV2 parity test'))('MobileNetV2-0.35 (ImageNet weights)', async () => {
    const a = await readLayersModel(MOBILENET);
    const r = await parity(a, [2, 224, 224, 3], 5, 1);
    expect(r.maxAbs).toBeGreaterThan(1);
    expect(r.opTypes.filter((o) => o === 'Conv')).toHaveLength(52);
    expect(r.opTypes).not.toContain('BatchNormalization');
  });

  it.runIf(hasShared(TM_EXPORT, 'Teachable Machine parity test'))('the Teachable Machine export (nested Sequential, softmax head)', async () => {
    const a = await readLayersModel(TM_EXPORT);
    await parity(a, [2, 224, 224, 3], 6, 1);
  });
});
