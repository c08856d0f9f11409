/**
 * Classification heads on feature vectors: the notebook's single softmax Dense layer ('linear'), or a
 * hidden layer with dropout ('mlp'). Built with tfjs-layers so the head serialises as a Keras model.
 */
import type * as TF from '@tensorflow/tfjs';

export type HeadKind = 'linear' | 'mlp';
export const HEADS: HeadKind[] = ['linear', 'mlp'];

export interface HeadOptions {
  kind?: HeadKind;
  /** Units of the MLP's hidden layer (default 256). */
  hidden?: number;
  /** Dropout rate: before the hidden layer's output for 'mlp' (default 0.5), on the features for 'linear' (default 0). */
  dropout?: number;
  seed?: number;
}

export interface HeadSpec {
  kind: HeadKind;
  inputDim: number;
  classes: number;
  hidden: number;
  dropout: number;
}

export function headSpec(inputDim: number, classes: number, o: HeadOptions = {}): HeadSpec {
  const kind = o.kind ?? 'linear';
  const dropout = o.dropout ?? (kind === 'mlp' ? 0.5 : 0);
  if (!(dropout >= 0 && dropout < 1)) throw new Error(`--dropout must be in [0, 1), got ${dropout}`);
  const hidden = o.hidden ?? 256;
  if (kind === 'mlp' && !(Number.isInteger(hidden) && hidden > 0)) throw new Error(`--hidden must be a positive integer, got ${hidden}`);
  return { kind, inputDim, classes, hidden, dropout };
}

/**
 * The head as a Sequential model. `output: 'logits'` leaves the last Dense layer linear (for training with a
 * numerically stable loss); 'softmax' is the shipped form.
 */
export function buildHead(tf: typeof TF, spec: HeadSpec, output: 'logits' | 'softmax', seed = 42): TF.Sequential {
  const layers: TF.layers.Layer[] = [];
  const init = (s: number) => tf.initializers.glorotUniform({ seed: s });
  const first = { inputShape: [spec.inputDim] };
  if (spec.kind === 'mlp') {
    layers.push(tf.layers.dense({ ...first, units: spec.hidden, activation: 'relu', kernelInitializer: init(seed), name: 'head_hidden' }));
    if (spec.dropout > 0) layers.push(tf.layers.dropout({ rate: spec.dropout, name: 'head_dropout' }));
  } else if (spec.dropout > 0) {
    layers.push(tf.layers.dropout({ ...first, rate: spec.dropout, name: 'head_dropout' }));
  }
  const outFirst = layers.length ? {} : first;
  layers.push(
    tf.layers.dense({ ...outFirst, units: spec.classes, activation: output === 'softmax' ? 'softmax' : 'linear', kernelInitializer: init(seed + 1), name: 'head_output' }),
  );
  return tf.sequential({ layers, name: 'tlearn_head' });
}
