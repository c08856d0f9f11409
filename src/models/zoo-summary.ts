/**
 * Summaries of zoo networks without downloading anything: the Keras architecture with its ImageNet top, or the
 * transfer-learning model tlearn trains (the backbone cut where the zoo cuts it, frozen, plus a new softmax).
 */
import type { KerasTopology } from '../backbones/layers-model.js';
import { kerasAppTopology } from '../backbones/keras-apps/artifacts.js';
import { cutTopology } from '../backbones/surgery.js';
import type { ZooEntry } from '../backbones/zoo.js';
import { getTf } from '../runtime/tfjs.js';
import { buildHead, headSpec, type HeadOptions } from '../engine/head.js';
import { summarizeTopology, type ModelSummary } from './summary.js';

export async function zooSummary(entry: ZooEntry, transferClasses?: number, head: HeadOptions = {}): Promise<ModelSummary> {
  if (!transferClasses) {
    const { topology } = await kerasAppTopology({ ...entry.app, includeTop: true });
    return summarizeTopology(topology);
  }
  const { topology } = await kerasAppTopology(entry.app);
  const backbone = cutTopology(topology, entry.cutAt, entry.pooling);
  const tf = await getTf();
  const h = buildHead(tf, headSpec(entry.featureDim, transferClasses, head), 'softmax');
  const headTopology = h.toJSON(null, false) as unknown as KerasTopology;
  h.dispose();
  const composed: KerasTopology = {
    class_name: 'Sequential',
    config: { name: `${entry.name}_transfer`, layers: [{ class_name: backbone.class_name, config: backbone.config }, { class_name: headTopology.class_name, config: headTopology.config }] },
  };
  const headLayers = new Set((headTopology.config.layers as any[]).map((l) => l.config.name));
  return summarizeTopology(composed, { trainable: (n) => headLayers.has(n) });
}
