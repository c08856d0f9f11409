/** Optimizers by name, with Keras' default learning rates. */
import type * as TF from '@tensorflow/tfjs';

export type OptimizerName = 'adam' | 'sgd' | 'rmsprop' | 'adadelta';
export const OPTIMIZERS: OptimizerName[] = ['adam', 'sgd', 'rmsprop', 'adadelta'];

export const DEFAULT_LR: Record<OptimizerName, number> = { adam: 1e-3, sgd: 1e-2, rmsprop: 1e-3, adadelta: 1.0 };

export interface OptimizerOptions {
  name: OptimizerName;
  lr?: number;
  /** SGD momentum (default 0.9) and RMSprop momentum (default 0). */
  momentum?: number;
}

export function createOptimizer(tf: typeof TF, o: OptimizerOptions): TF.Optimizer {
  const lr = o.lr ?? DEFAULT_LR[o.name];
  switch (o.name) {
    case 'adam':
      return tf.train.adam(lr, 0.9, 0.999, 1e-7);
    case 'sgd':
      return (o.momentum ?? 0.9) > 0 ? tf.train.momentum(lr, o.momentum ?? 0.9) : tf.train.sgd(lr);
    case 'rmsprop':
      return tf.train.rmsprop(lr, 0.9, o.momentum ?? 0, 1e-7);
    case 'adadelta':
      return tf.train.adadelta(lr, 0.95, 1e-7);
    default:
      throw new Error(`unknown optimizer '${o.name as string}' (choose ${OPTIMIZERS.join(', ')})`);
  }
}
