/**
 * Keras model configs (Sequential, Model/Functional, nested) normalised to one shape: layers with the
 * tensors each call consumes, plus the model's input and output tensors. TF.js and Keras 2 use this layout.
 */
export interface TensorRef {
  layer: string;
  node: number;
  tensor: number;
}

export interface LayerNode {
  name: string;
  className: string;
  config: any;
  /** One entry per call of the layer; each lists the tensors that call consumes. */
  calls: TensorRef[][];
}

export interface KerasGraph {
  name: string;
  layers: LayerNode[];
  inputs: TensorRef[];
  outputs: TensorRef[];
  /** Keras input shapes (batch first, null = any), one per input, where the config declares them. */
  inputShapes: Array<Array<number | null> | undefined>;
}

export const MODEL_CLASSES = new Set(['Sequential', 'Model', 'Functional']);

export class UnsupportedModelError extends Error {}

function ref(x: any): TensorRef {
  if (Array.isArray(x)) return { layer: x[0], node: x[1] ?? 0, tensor: x[2] ?? 0 };
  throw new UnsupportedModelError(`unrecognised tensor reference ${JSON.stringify(x)} (Keras 3 configs are not supported; save with Keras 2 / TF.js)`);
}

function refList(x: any): TensorRef[] {
  // output_layers can be a single ref ["name",0,0] or a list of refs.
  if (Array.isArray(x) && typeof x[0] === 'string') return [ref(x)];
  return (x as any[]).map(ref);
}

export function layerName(layer: any): string {
  return layer.name ?? layer.config?.name;
}

function declaredInputShape(config: any): Array<number | null> | undefined {
  const s = config?.batch_input_shape ?? config?.batchInputShape ?? config?.batch_shape;
  if (s) return s;
  const inputShape = config?.input_shape ?? config?.inputShape;
  return inputShape ? [null, ...inputShape] : undefined;
}

/** Normalises a Sequential/Model/Functional config into a KerasGraph. */
export function toKerasGraph(topology: { class_name: string; config: any }): KerasGraph {
  const { class_name: cls, config } = topology;
  if (cls === 'Sequential') return sequentialGraph(config);
  if (cls === 'Model' || cls === 'Functional') return functionalGraph(config);
  throw new UnsupportedModelError(`model class '${cls}' is not supported (expected Sequential, Model or Functional)`);
}

function functionalGraph(config: any): KerasGraph {
  const layers: LayerNode[] = (config.layers as any[]).map((l) => ({
    name: layerName(l),
    className: l.class_name,
    config: l.config,
    calls: (l.inbound_nodes ?? []).map((call: any) => {
      if (!Array.isArray(call)) {
        throw new UnsupportedModelError(`layer ${layerName(l)}: Keras 3 inbound_nodes are not supported; save the model with Keras 2 or TF.js`);
      }
      return call.map(ref);
    }),
  }));
  const inputs = refList(config.input_layers);
  const byName = new Map(layers.map((l) => [l.name, l]));
  return {
    name: config.name ?? 'model',
    layers,
    inputs,
    outputs: refList(config.output_layers),
    inputShapes: inputs.map((r) => declaredInputShape(byName.get(r.layer)?.config)),
  };
}

function sequentialGraph(config: any): KerasGraph {
  const raw: any[] = Array.isArray(config) ? config : config.layers;
  const name = Array.isArray(config) ? 'sequential' : (config.name ?? 'sequential');
  if (!raw.length) throw new UnsupportedModelError(`Sequential model ${name} has no layers`);
  const layers: LayerNode[] = [];
  let prev: TensorRef;
  let inputShape: Array<number | null> | undefined;
  let start = 0;
  if (raw[0].class_name === 'InputLayer') {
    const inputName = layerName(raw[0]);
    layers.push({ name: inputName, className: 'InputLayer', config: raw[0].config, calls: [] });
    inputShape = declaredInputShape(raw[0].config);
    prev = { layer: inputName, node: 0, tensor: 0 };
    start = 1;
  } else {
    const inputName = `${name}__input`;
    inputShape = declaredInputShape(raw[0].config);
    layers.push({ name: inputName, className: 'InputLayer', config: { batch_input_shape: inputShape }, calls: [] });
    prev = { layer: inputName, node: 0, tensor: 0 };
  }
  for (const l of raw.slice(start)) {
    const n = layerName(l);
    layers.push({ name: n, className: l.class_name, config: l.config, calls: [[prev]] });
    prev = { layer: n, node: 0, tensor: 0 };
  }
  return { name, layers, inputs: [{ layer: layers[0]!.name, node: 0, tensor: 0 }], outputs: [prev], inputShapes: [inputShape] };
}

/** How many times each layer's outputs are consumed (by calls or as model outputs). */
export function consumerCounts(g: KerasGraph): Map<string, { count: number; consumers: LayerNode[] }> {
  const m = new Map<string, { count: number; consumers: LayerNode[] }>();
  const bump = (name: string, by?: LayerNode) => {
    const e = m.get(name) ?? { count: 0, consumers: [] };
    e.count++;
    if (by) e.consumers.push(by);
    m.set(name, e);
  };
  for (const l of g.layers) for (const call of l.calls) for (const r of call) bump(r.layer, l);
  for (const r of g.outputs) bump(r.layer);
  return m;
}

/** The Keras input shape of a nested or top-level model config, where declared. */
export function modelInputShape(topology: { class_name: string; config: any }): Array<number | null> | undefined {
  return toKerasGraph(topology).inputShapes[0];
}

/** The declared input shape, looking into a nested first model (Teachable Machine's layout) when needed. */
export function findInputShape(topology: { class_name: string; config: any }): Array<number | null> | undefined {
  const graph = toKerasGraph(topology);
  if (graph.inputShapes[0]) return graph.inputShapes[0];
  const first = graph.layers.find((l) => l.className !== 'InputLayer');
  if (first && MODEL_CLASSES.has(first.className)) return findInputShape({ class_name: first.className, config: first.config });
  return undefined;
}
