/** A Keras application with weights from a Keras .h5 file, as TF.js layers model artifacts. */
import type { LayersModelArtifacts, NamedWeight } from '../layers-model.js';
import { encodeWeights } from '../layers-model.js';
import { getTf } from '../../runtime/tfjs.js';
import { buildKerasApp, type KerasAppSpec } from './build.js';
import { H5FormatError, readKerasH5 } from './h5.js';

/** Topology and the (name, shape) of every weight, without loading any weights. */
export async function kerasAppTopology(spec: KerasAppSpec): Promise<{ topology: any; weights: Array<{ layer: string; weight: string; shape: number[] }> }> {
  const tf = await getTf();
  const model = buildKerasApp(tf, spec);
  try {
    const topology = model.toJSON(null, false) as any;
    const weights = model.weights.map((w) => {
      const [layer, weight] = [w.originalName.split('/').slice(0, -1).join('/'), w.originalName.split('/').pop()!];
      return { layer, weight, shape: w.shape as number[] };
    });
    return { topology, weights };
  } finally {
    model.dispose();
  }
}

/** Builds the architecture and fills every weight from the .h5 file by layer name (extra layers in the file are ignored). */
export async function kerasAppArtifacts(spec: KerasAppSpec, h5File: string): Promise<LayersModelArtifacts> {
  const { topology, weights } = await kerasAppTopology(spec);
  const file = await readKerasH5(h5File);
  const named: NamedWeight[] = weights.map(({ layer, weight, shape }) => {
    const group = file.get(layer);
    if (!group) throw new H5FormatError(`${h5File} has no weights for layer '${layer}' (is it the ${spec.family} file?)`);
    const w = group.find((x) => x.name === weight);
    if (!w) throw new H5FormatError(`${h5File}: layer '${layer}' has no '${weight}' (it has ${group.map((x) => x.name).join(', ')})`);
    if (w.shape.join('x') !== shape.join('x')) throw new H5FormatError(`${h5File}: ${layer}/${weight} has shape [${w.shape}], the architecture needs [${shape}]`);
    return { name: `${layer}/${weight}`, shape, data: w.data };
  });
  return { modelTopology: { class_name: topology.class_name, config: topology.config, keras_version: topology.keras_version, backend: topology.backend }, ...encodeWeights(named), format: 'layers-model', generatedBy: `tlearn from ${h5File}` };
}
