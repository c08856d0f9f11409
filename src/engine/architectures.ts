/**
 * Small CNNs trained from scratch. `notebook-cnn` (the default) is the classic Keras transfer-learning notebook's model,
 * layer for layer: (Conv2D 32 3x3 + ReLU + MaxPool 2) x2, Dropout 0.25, (Conv2D 32 3x3 + ReLU + MaxPool 2) x2,
 * Dropout 0.25, Flatten, Dense 256 + ReLU, Dropout 0.5, Dense classes + softmax; inputs scaled to [0, 1].
 * At 224x224 with 97 classes it has 1,233,473 parameters, as in the notebook's summary.
 */
import type * as TF from '@tensorflow/tfjs';
import type { LayersModelArtifacts } from '../backbones/layers-model.js';
import type { PreprocessMode } from '../backbones/preprocess.js';
import { getTf } from '../runtime/tfjs.js';

export interface Architecture {
  name: string;
  description: string;
  preprocessing: PreprocessMode;
  build: (tf: typeof TF, inputSize: [number, number], classes: number, seed: number) => TF.LayersModel;
}

function notebookCnn(tf: typeof TF, [h, w]: [number, number], classes: number, seed: number): TF.Sequential {
  let k = 0;
  const init = () => tf.initializers.glorotUniform({ seed: seed + k++ });
  const m = tf.sequential({ name: 'notebook_cnn' });
  const block = (i: number, first: boolean) => {
    m.add(tf.layers.conv2d({ ...(first ? { inputShape: [h, w, 3] } : {}), filters: 32, kernelSize: 3, kernelInitializer: init(), name: `conv2d_${i}` }));
    m.add(tf.layers.activation({ activation: 'relu', name: `activation_${i}` }));
    m.add(tf.layers.maxPooling2d({ poolSize: 2, name: `max_pooling2d_${i}` }));
  };
  block(1, true);
  block(2, false);
  m.add(tf.layers.dropout({ rate: 0.25, name: 'dropout_1' }));
  block(3, false);
  block(4, false);
  m.add(tf.layers.dropout({ rate: 0.25, name: 'dropout_2' }));
  m.add(tf.layers.flatten({ name: 'flatten_1' }));
  m.add(tf.layers.dense({ units: 256, kernelInitializer: init(), name: 'dense_1' }));
  m.add(tf.layers.activation({ activation: 'relu', name: 'activation_5' }));
  m.add(tf.layers.dropout({ rate: 0.5, name: 'dropout_3' }));
  m.add(tf.layers.dense({ units: classes, kernelInitializer: init(), name: 'dense_2' }));
  m.add(tf.layers.activation({ activation: 'softmax', name: 'activation_6' }));
  return m;
}

/**
 * A small ResNet with BatchNormalization for training from scratch on a CPU: a 3x3 stride-2 stem (24 filters),
 * four stride-2 stages of 32, 64, 128 and 256 filters, a residual block (two 3x3 convolutions) in the last three,
 * global average pooling, dropout 0.2 and a softmax Dense layer. About 2.0M parameters and 0.25 GMAC at
 * 224x224 (the notebook's CNN: 1.2M and 0.18 GMAC); BatchNormalization trains with batch statistics.
 */
function resnetMini(tf: typeof TF, [h, w]: [number, number], classes: number, seed: number): TF.LayersModel {
  let k = 0;
  const init = () => tf.initializers.heNormal({ seed: seed + k++ });
  const conv = (x: TF.SymbolicTensor, filters: number, strides: number, name: string) =>
    tf.layers.conv2d({ filters, kernelSize: 3, strides, padding: 'same', useBias: false, kernelInitializer: init(), name }).apply(x) as TF.SymbolicTensor;
  const bn = (x: TF.SymbolicTensor, name: string) => tf.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-3, name }).apply(x) as TF.SymbolicTensor;
  const relu = (x: TF.SymbolicTensor, name: string) => tf.layers.activation({ activation: 'relu', name }).apply(x) as TF.SymbolicTensor;
  const input = tf.input({ shape: [h, w, 3], name: 'image' });
  let x = relu(bn(conv(input, 24, 2, 'stem_conv'), 'stem_bn'), 'stem_relu');
  [32, 64, 128, 256].forEach((filters, i) => {
    const s = `stage${i + 1}`;
    x = relu(bn(conv(x, filters, 2, `${s}_down_conv`), `${s}_down_bn`), `${s}_down_relu`);
    if (i === 0) return;
    let y = relu(bn(conv(x, filters, 1, `${s}_res_conv1`), `${s}_res_bn1`), `${s}_res_relu1`);
    y = bn(conv(y, filters, 1, `${s}_res_conv2`), `${s}_res_bn2`);
    x = relu(tf.layers.add({ name: `${s}_add` }).apply([x, y]) as TF.SymbolicTensor, `${s}_out`);
  });
  x = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as TF.SymbolicTensor;
  x = tf.layers.dropout({ rate: 0.2, name: 'dropout' }).apply(x) as TF.SymbolicTensor;
  const out = tf.layers.dense({ units: classes, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + k++ }), name: 'predictions' }).apply(x) as TF.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'resnet_mini' });
}

export const ARCHITECTURES: Record<string, Architecture> = {
  'notebook-cnn': {
    name: 'notebook-cnn',
    description: "the Keras notebook's CNN: 4 x (Conv2D 32 3x3, ReLU, MaxPool 2) with dropout, Dense 256, softmax",
    preprocessing: 'unit',
    build: notebookCnn,
  },
  'resnet-mini': {
    name: 'resnet-mini',
    description: 'a small ResNet with BatchNormalization: 3x3 stem, four stride-2 stages of 32-256 filters with residual blocks in the last three, global average pooling, softmax',
    preprocessing: 'tf',
    build: resnetMini,
  },
};

export const DEFAULT_ARCH = 'notebook-cnn';

export async function modelArtifacts(tf: typeof TF, model: TF.LayersModel): Promise<LayersModelArtifacts> {
  let saved: any;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  const data = saved.weightData;
  return { modelTopology: saved.modelTopology, weightSpecs: saved.weightSpecs, weightData: Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data };
}

/** A freshly initialised (seeded) architecture as TF.js layers model artifacts. */
export async function buildArchitecture(name: string, inputSize: [number, number], classes: number, seed: number): Promise<{ arch: Architecture; artifacts: LayersModelArtifacts }> {
  const arch = ARCHITECTURES[name];
  if (!arch) throw new Error(`unknown architecture '${name}' (choose ${Object.keys(ARCHITECTURES).join(', ')})`);
  const tf = await getTf();
  let model: TF.LayersModel;
  try {
    model = arch.build(tf, inputSize, classes, seed);
  } catch (e: any) {
    if (/Negative dimension/.test(String(e?.message))) throw new Error(`input size ${inputSize.join('x')} is too small for ${name}: its convolutions and poolings shrink it to nothing (try --input-size 64 or more)`);
    throw e;
  }
  const artifacts = await modelArtifacts(tf, model);
  model.dispose();
  return { arch, artifacts };
}
