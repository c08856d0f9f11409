/**
 * Small CNNs trained from scratch. `notebook-cnn` is the classic Keras transfer-learning notebook's model,
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
  build: (tf: typeof TF, inputSize: [number, number], classes: number, seed: number) => TF.Sequential;
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

export const ARCHITECTURES: Record<string, Architecture> = {
  'notebook-cnn': {
    name: 'notebook-cnn',
    description: "the Keras notebook's CNN: 4 x (Conv2D 32 3x3, ReLU, MaxPool 2) with dropout, Dense 256, softmax",
    preprocessing: 'unit',
    build: notebookCnn,
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
  let model: TF.Sequential;
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
