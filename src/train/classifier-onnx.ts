/**
 * A classifier on a .tflite backbone is shipped as one ONNX file: the backbone's feature graph, then the head
 * (converted from its layers model, calibration folded in). Undefined for layers-model classifiers.
 */
import { chainOnnx } from '../onnx/compose.js';
import { layersModelToOnnx } from '../onnx/convert.js';
import type { ModelOutcome } from './types.js';

export function classifierOnnx(o: Pick<ModelOutcome, 'featureOnnx' | 'model'>): Uint8Array | undefined {
  if (!o.featureOnnx) return undefined;
  return chainOnnx(o.featureOnnx, layersModelToOnnx(o.model).bytes, { graphName: 'tlearn_classifier' });
}
