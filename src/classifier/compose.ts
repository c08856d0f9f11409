/** A classifier as one TF.js layers model: Sequential[backbone, head], the layout Teachable Machine exports use. */
import type { LayersModelArtifacts } from '../backbones/layers-model.js';

export function composeClassifier(backbone: LayersModelArtifacts, head: LayersModelArtifacts, name = 'tlearn_classifier'): LayersModelArtifacts {
  const bb = backbone.modelTopology;
  const hd = head.modelTopology;
  const a = new Uint8Array(backbone.weightData);
  const b = new Uint8Array(head.weightData);
  const data = new Uint8Array(a.length + b.length);
  data.set(a, 0);
  data.set(b, a.length);
  return {
    modelTopology: {
      class_name: 'Sequential',
      config: { name, layers: [{ class_name: bb.class_name, config: bb.config }, { class_name: hd.class_name, config: hd.config }] },
      keras_version: hd.keras_version ?? bb.keras_version,
      backend: hd.backend ?? bb.backend,
    },
    weightSpecs: [...backbone.weightSpecs, ...head.weightSpecs],
    weightData: data.buffer,
    format: 'layers-model',
    generatedBy: 'tlearn',
    convertedBy: null,
  };
}
