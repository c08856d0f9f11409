/**
 * Graph surgery on TF.js layers models as data: cut a model at a layer and pool it, or take the backbone
 * out of a Teachable Machine export. Weights follow the layers that are kept.
 */
import type { KerasTopology, LayersModelArtifacts, WeightSpec } from './layers-model.js';
import { ModelFormatError } from './layers-model.js';
import { MODEL_CLASSES, layerName } from './keras-graph.js';

const SPEC_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

function specBytes(s: WeightSpec): number {
  return s.shape.reduce((a, b) => a * b, 1) * (SPEC_BYTES[s.quantization?.dtype ?? s.dtype] ?? 4);
}

/** The layers of a (possibly nested) topology, nested models expanded, in order, with their class. */
export function flatLayers(t: { class_name: string; config: any }): Array<{ name: string; className: string }> {
  const out: Array<{ name: string; className: string }> = [];
  const layers: any[] = Array.isArray(t.config) ? t.config : (t.config.layers ?? []);
  for (const l of layers) {
    if (MODEL_CLASSES.has(l.class_name)) out.push(...flatLayers(l));
    else out.push({ name: layerName(l), className: l.class_name });
  }
  return out;
}

/** Every layer name in a (possibly nested) topology. */
export function allLayerNames(topology: { class_name: string; config: any }): Set<string> {
  return new Set(flatLayers(topology).map((l) => l.name));
}

/** Keeps the weights whose layer (the first part of the weight name) is in `layers`. */
export function selectWeights(a: LayersModelArtifacts, layers: Set<string>): { weightSpecs: WeightSpec[]; weightData: ArrayBuffer } {
  const specs: WeightSpec[] = [];
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const s of a.weightSpecs) {
    const n = specBytes(s);
    if (layers.has(s.name.split('/')[0]!)) {
      specs.push(s);
      parts.push(new Uint8Array(a.weightData, offset, n));
    }
    offset += n;
  }
  const total = parts.reduce((x, p) => x + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return { weightSpecs: specs, weightData: out.buffer };
}

export function countParams(a: LayersModelArtifacts): number {
  return a.weightSpecs.reduce((n, s) => n + s.shape.reduce((x, y) => x * y, 1), 0);
}

/** Finds a layer by name at the top level of a functional model, or inside its first nested model. */
function functionalConfigContaining(topology: KerasTopology, layer: string): { config: any; className: string } | undefined {
  const layers: any[] = Array.isArray(topology.config) ? topology.config : (topology.config.layers ?? []);
  if ((topology.class_name === 'Model' || topology.class_name === 'Functional') && layers.some((l) => layerName(l) === layer)) {
    return { config: topology.config, className: topology.class_name };
  }
  for (const l of layers) {
    if (MODEL_CLASSES.has(l.class_name)) {
      const found = functionalConfigContaining({ class_name: l.class_name, config: l.config }, layer);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * Cuts a functional model's topology at `cutAt` (keeping only what that layer depends on) and appends global
 * pooling ('none': the cut layer is the output).
 */
export function cutTopology(topologyIn: KerasTopology, cutAt: string, pooling: 'avg' | 'max' | 'none', name?: string): KerasTopology {
  const found = functionalConfigContaining(topologyIn, cutAt);
  if (!found) throw new ModelFormatError(`layer '${cutAt}' not found in the model (the zoo cuts this backbone there)`);
  const layers: any[] = found.config.layers;
  const byName = new Map(layers.map((l) => [layerName(l), l]));
  const keep = new Set<string>();
  const stack = [cutAt];
  while (stack.length) {
    const n = stack.pop()!;
    if (keep.has(n)) continue;
    keep.add(n);
    const l = byName.get(n);
    if (!l) throw new ModelFormatError(`layer '${n}' referenced but not defined`);
    for (const call of l.inbound_nodes ?? []) for (const ref of call) stack.push(ref[0]);
  }
  const kept = layers.filter((l) => keep.has(layerName(l)));
  const base = { ...found.config, name: name ?? found.config.name };
  const meta = { keras_version: topologyIn.keras_version, backend: topologyIn.backend };
  if (pooling === 'none') return { class_name: found.className, config: { ...base, layers: kept, output_layers: [[cutAt, 0, 0]] }, ...meta };
  const poolName = pooling === 'avg' ? 'tlearn_global_average_pooling' : 'tlearn_global_max_pooling';
  const pool = {
    class_name: pooling === 'avg' ? 'GlobalAveragePooling2D' : 'GlobalMaxPooling2D',
    config: { name: poolName, trainable: true, data_format: 'channels_last' },
    name: poolName,
    inbound_nodes: [[[cutAt, 0, 0, {}]]],
  };
  return { class_name: found.className, config: { ...base, layers: [...kept, pool], output_layers: [[poolName, 0, 0]] }, ...meta };
}

/** cutTopology, with the weights of the kept layers. */
export function cutAndPool(a: LayersModelArtifacts, cutAt: string, pooling: 'avg' | 'max' | 'none', name?: string): LayersModelArtifacts {
  const topology = cutTopology(a.modelTopology, cutAt, pooling, name);
  return { ...a, modelTopology: topology, ...selectWeights(a, allLayerNames(topology)), extra: {} };
}

/** Whether the model's output is already a pooled feature vector (its last layer is global pooling). */
export function endsInGlobalPooling(topology: KerasTopology): boolean {
  const layers: any[] = Array.isArray(topology.config) ? topology.config : (topology.config.layers ?? []);
  const outRef = topology.config.output_layers;
  const outName = Array.isArray(outRef?.[0]) ? outRef[0][0] : outRef?.[0];
  const last = outName ? layers.find((l) => layerName(l) === outName) : layers[layers.length - 1];
  return Boolean(last && /^Global(Average|Max)Pooling2D$/.test(last.class_name));
}

/**
 * A Teachable Machine image export is Sequential[Sequential[MobileNet, pooling], Sequential[head]]:
 * returns the first part (the feature extractor), or undefined if the model is not laid out like that.
 */
export function teachableMachineBackbone(a: LayersModelArtifacts): LayersModelArtifacts | undefined {
  const t = a.modelTopology;
  if (t.class_name !== 'Sequential') return undefined;
  const layers: any[] = Array.isArray(t.config) ? t.config : t.config.layers;
  if (layers.length !== 2 || !MODEL_CLASSES.has(layers[0].class_name) || !MODEL_CLASSES.has(layers[1].class_name)) return undefined;
  const backbone: KerasTopology = { class_name: layers[0].class_name, config: layers[0].config, keras_version: t.keras_version, backend: t.backend };
  return { ...a, modelTopology: backbone, ...selectWeights(a, allLayerNames(backbone)), extra: {} };
}
