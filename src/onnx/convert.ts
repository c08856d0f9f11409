/**
 * TF.js / Keras layers model → ONNX. The graph takes NHWC float32 input (as TF.js does) and transposes to
 * NCHW once inside; convolutions run in NCHW, and tensors go back to NHWC only where a layer needs Keras' order.
 */
import { decodeWeights, type LayersModelArtifacts } from '../backbones/layers-model.js';
import { ConvertContext, WeightStore, type BatchStatistics, type DropoutMask, type LayerConverter, type ParamBinding, type Scope, type StateBinding, type TrainingConversion, type Value } from './context.js';
import { OnnxGraph } from './graph.js';
import { consumerCounts, findInputShape, MODEL_CLASSES, toKerasGraph, UnsupportedModelError, type KerasGraph, type LayerNode, type TensorRef } from '../backbones/keras-graph.js';
import { convLayers } from './layers-conv.js';
import { coreLayers } from './layers-core.js';

export { findInputShape, UnsupportedModelError };
export type { BatchStatistics, DropoutMask, ParamBinding, StateBinding, TrainingConversion };

const CONVERTERS: Record<string, LayerConverter> = { ...convLayers, ...coreLayers };

export const SUPPORTED_LAYERS: string[] = [...Object.keys(CONVERTERS), 'InputLayer', ...MODEL_CLASSES].sort();

export interface OnnxExportOptions {
  inputName?: string;
  outputName?: string;
  /** Overrides the model's declared input shape (Keras order, batch first). */
  inputShape?: Array<number | null>;
  /** Stored as ONNX metadata_props. */
  metadata?: Record<string, string>;
  docString?: string;
}

export interface OnnxExport {
  bytes: Uint8Array;
  inputName: string;
  outputName: string;
  /** ONNX input dims, NHWC, 'batch' symbolic. */
  inputShape: Array<number | string>;
  outputShape: Array<number | string>;
  layout: 'NHWC';
  nodeCount: number;
  opTypes: string[];
}

const key = (r: TensorRef) => `${r.layer}:${r.node}:${r.tensor}`;

function convertLayer(ctx: ConvertContext, layer: LayerNode, inputs: Value[], scope: Scope): Value[] {
  if (ctx.absorbed.has(layer.name)) return inputs;
  if (MODEL_CLASSES.has(layer.className)) return runGraph(ctx, toKerasGraph({ class_name: layer.className, config: layer.config }), inputs);
  const conv = CONVERTERS[layer.className];
  if (!conv) {
    throw new UnsupportedModelError(`layer '${layer.name}' of class ${layer.className} is not supported by the ONNX exporter (supported: ${SUPPORTED_LAYERS.join(', ')})`);
  }
  return conv(ctx, layer, inputs, scope);
}

function runGraph(ctx: ConvertContext, graph: KerasGraph, inputs: Value[]): Value[] {
  if (inputs.length !== graph.inputs.length) throw new UnsupportedModelError(`model ${graph.name} takes ${graph.inputs.length} inputs, got ${inputs.length}`);
  const consumers = consumerCounts(graph);
  const scope: Scope = { consumers: (n) => consumers.get(n) ?? { count: 0, consumers: [] } };
  const values = new Map<string, Value>();
  graph.inputs.forEach((r, i) => values.set(key(r), inputs[i]!));
  let pending = graph.layers
    .filter((l) => l.className !== 'InputLayer')
    .map((layer) => ({ layer, done: layer.calls.map(() => false) }));
  while (pending.length) {
    let progressed = false;
    for (const p of pending) {
      p.layer.calls.forEach((refs, k) => {
        if (p.done[k] || !refs.every((r) => values.has(key(r)))) return;
        const outs = convertLayer(ctx, p.layer, refs.map((r) => values.get(key(r))!), scope);
        outs.forEach((v, t) => values.set(`${p.layer.name}:${k}:${t}`, v));
        p.done[k] = true;
        progressed = true;
      });
    }
    pending = pending.filter((p) => p.done.some((d) => !d));
    if (!progressed && pending.length) {
      throw new UnsupportedModelError(`model ${graph.name}: cannot resolve the inputs of ${pending.map((p) => p.layer.name).join(', ')}`);
    }
  }
  return graph.outputs.map((r) => {
    const v = values.get(key(r));
    if (!v) throw new UnsupportedModelError(`model ${graph.name}: output ${r.layer} is not produced by any layer`);
    return v;
  });
}

export interface OnnxGraphBuild {
  graph: OnnxGraph;
  inputName: string;
  outputName: string;
  /** Keras input shape (batch first, null = any). */
  kerasInputShape: Array<number | null>;
  /** Keras shape of the output. */
  kerasOutputShape: Array<number | null>;
  /** Trained weights (training mode): graph inputs in ONNX layout, with their Keras names. */
  params: ParamBinding[];
  dropoutMasks: DropoutMask[];
  /** Moving statistics of live BatchNormalization layers fed as inputs ('moving' mode). */
  state: StateBinding[];
  /** Batch statistics of live BatchNormalization layers, graph outputs after the model output ('batch' mode). */
  batchStats: BatchStatistics[];
  modelName: string;
}

export interface BuildOptions extends OnnxExportOptions {
  /** Build a training graph: trainable weights become inputs, Dropout multiplies by mask inputs, nothing is folded. */
  training?: TrainingConversion;
  /** Output the logits: drop a final softmax (for training with a cross-entropy loss). */
  logits?: boolean;
}

/** Builds the ONNX graph of a TF.js layers model (not yet serialised). */
export function buildOnnxGraph(artifacts: LayersModelArtifacts, options: BuildOptions = {}): OnnxGraphBuild {
  const inputName = options.inputName ?? 'input';
  const outputName = options.outputName ?? 'output';
  const graph = toKerasGraph(artifacts.modelTopology);
  if (graph.inputs.length !== 1 || graph.outputs.length !== 1) {
    throw new UnsupportedModelError(`only single-input single-output models are supported (this one has ${graph.inputs.length} inputs, ${graph.outputs.length} outputs)`);
  }
  const inputShape = options.inputShape ?? findInputShape(artifacts.modelTopology);
  if (!inputShape) throw new UnsupportedModelError('the model does not declare its input shape; pass inputShape');
  const g = new OnnxGraph();
  const ctx = new ConvertContext(g, new WeightStore(decodeWeights(artifacts)), options.training);
  const onnxIn = inputShape.map((d, i) => (d === null ? (i === 0 ? 'batch' : `d${i}`) : d));
  g.addInput(inputName, onnxIn);
  const input: Value = { name: inputName, shape: [null, ...inputShape.slice(1)], layout: 'nhwc' };
  const [out] = runGraph(ctx, graph, [input]);
  let final = ctx.nhwc(out!);
  if (options.logits) {
    const last = g.nodes[g.nodes.length - 1];
    if (!last || last.op !== 'Softmax' || last.outputs[0] !== final.name) throw new UnsupportedModelError('the model does not end in a softmax, so its logits cannot be taken');
    g.nodes.pop();
    final = { ...final, name: last.inputs[0]! };
  }
  g.node('Identity', [final.name], {}, '__output');
  g.renameValue('__output', outputName);
  const outShape = final.shape.map((d, i) => (d === null ? (i === 0 ? 'batch' : `o${i}`) : d));
  g.addOutput(outputName, outShape);
  for (const p of ctx.params) g.initializerToInput(p.onnxName);
  for (const s of ctx.state) g.initializerToInput(s.onnxName);
  for (const s of ctx.batchStats) for (const v of [s.mean, s.variance]) g.addOutput(v);
  g.metadata = { ...(options.metadata ?? {}), layout: 'NHWC' };
  return { graph: g, inputName, outputName, kerasInputShape: inputShape, kerasOutputShape: final.shape, params: ctx.params, dropoutMasks: ctx.dropoutMasks, state: ctx.state, batchStats: ctx.batchStats, modelName: graph.name };
}

/** Converts a TF.js layers model (topology + weights) to an ONNX model. */
export function layersModelToOnnx(artifacts: LayersModelArtifacts, options: OnnxExportOptions = {}): OnnxExport {
  const b = buildOnnxGraph(artifacts, options);
  const bytes = b.graph.toBytes(b.modelName, options.docString ?? 'Converted from a TF.js layers model by tlearn');
  return {
    bytes,
    inputName: b.inputName,
    outputName: b.outputName,
    inputShape: b.graph.inputs[0]!.shape!,
    outputShape: b.graph.outputs[0]!.shape!,
    layout: 'NHWC',
    nodeCount: b.graph.nodeCount,
    opTypes: b.graph.opTypes(),
  };
}
