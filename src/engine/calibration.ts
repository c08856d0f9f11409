/**
 * Temperature scaling (Guo et al., 2017): one scalar T > 0 that divides the logits, fitted on held-out
 * predictions by minimising the negative log-likelihood. It never changes which class wins, only how sure the
 * model says it is. The fit works from probabilities (log p = logits - logsumexp, so softmax(log p / T) is
 * softmax(logits / T)), and the result is folded into the final Dense layer (kernel and bias times 1/T), so the
 * shipped model itself outputs calibrated probabilities in TF.js, ONNX, predict and serve alike.
 */
import type { LayersModelArtifacts, KerasTopology } from '../backbones/layers-model.js';
import { decodeWeights, encodeWeights } from '../backbones/layers-model.js';
import { MODEL_CLASSES, toKerasGraph, type KerasGraph, type LayerNode } from '../backbones/keras-graph.js';

/** Loss and expected calibration error of one split's probabilities. */
export interface CalibrationPoint {
  loss: number;
  ece: number;
}

/** What the calibration step did (metrics.json `calibration`, the report's calibration section). */
export interface CalibrationSummary {
  /** 'temperature': fitted and folded into the model; 'none': left as trained (see `note`). */
  method: 'temperature' | 'none';
  temperature: number;
  /** The Dense layer whose kernel and bias were divided by the temperature. */
  layer: string | null;
  fittedOn: 'val';
  note?: string;
  /** Before and after, on the validation split (the fit) and on the test split (never used for the fit; without TTA). */
  val: { before: CalibrationPoint; after: CalibrationPoint };
  test: { before: CalibrationPoint; after: CalibrationPoint };
}

export class CalibrationError extends Error {}

/** Search range of the temperature: beyond it a fit says more about a tiny validation set than about the model. */
export const TEMPERATURE_RANGE: [number, number] = [0.05, 20];

/** Smallest probability used when taking logs (float32 softmax outputs underflow to 0 far below it). */
const TINY = 1e-37;

/** Natural logs of the probabilities, in float64, clipped at TINY. */
function logProbs(probs: Float32Array): Float64Array {
  return Float64Array.from(probs, (p) => Math.log(Math.max(p, TINY)));
}

/** Mean NLL of the true class under softmax(beta * logp), for rows of K log-probabilities. */
function nllAt(logp: Float64Array, labels: ArrayLike<number>, K: number, beta: number): number {
  const n = labels.length;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const off = i * K;
    let max = -Infinity;
    for (let k = 0; k < K; k++) max = Math.max(max, beta * logp[off + k]!);
    let sum = 0;
    for (let k = 0; k < K; k++) sum += Math.exp(beta * logp[off + k]! - max);
    total += max + Math.log(sum) - beta * logp[off + labels[i]!]!;
  }
  return n ? total / n : 0;
}

export interface TemperatureFit {
  temperature: number;
  /** Mean NLL on the fitting set before (T = 1) and after. */
  nllBefore: number;
  nllAfter: number;
  /** True when the best temperature lies on an end of TEMPERATURE_RANGE. */
  atBound: boolean;
}

/**
 * The temperature that minimises the mean NLL of `labels` under the rescaled probabilities. The NLL is convex
 * in 1/T, so a golden-section search over log T finds the optimum.
 */
export function fitTemperature(probs: Float32Array, labels: ArrayLike<number>, classes: number): TemperatureFit {
  const n = labels.length;
  if (!n) throw new CalibrationError('no predictions to fit a temperature on');
  if (probs.length !== n * classes) throw new CalibrationError(`${probs.length} probabilities for ${n} samples of ${classes} classes`);
  const logp = logProbs(probs);
  const f = (logT: number) => nllAt(logp, labels, classes, Math.exp(-logT));
  let a = Math.log(TEMPERATURE_RANGE[0]);
  let b = Math.log(TEMPERATURE_RANGE[1]);
  const phi = (Math.sqrt(5) - 1) / 2;
  let c = b - phi * (b - a);
  let d = a + phi * (b - a);
  let fc = f(c);
  let fd = f(d);
  while (b - a > 1e-7) {
    if (fc < fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - phi * (b - a);
      fc = f(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + phi * (b - a);
      fd = f(d);
    }
  }
  let logT = (a + b) / 2;
  // the ends themselves (golden section never evaluates them)
  for (const end of [Math.log(TEMPERATURE_RANGE[0]), Math.log(TEMPERATURE_RANGE[1])]) if (f(end) < f(logT)) logT = end;
  const nllBefore = f(0);
  let nllAfter = f(logT);
  // never worse than leaving the model as it is
  if (nllBefore <= nllAfter) {
    logT = 0;
    nllAfter = nllBefore;
  }
  const atBound = Math.abs(logT - Math.log(TEMPERATURE_RANGE[0])) < 1e-3 || Math.abs(logT - Math.log(TEMPERATURE_RANGE[1])) < 1e-3;
  return { temperature: Math.exp(logT), nllBefore, nllAfter, atBound };
}

/** Rows of probabilities as the temperature-scaled model outputs them: softmax(log p / T). */
export function applyTemperature(probs: Float32Array, classes: number, temperature: number): Float32Array {
  const beta = 1 / temperature;
  const out = new Float32Array(probs.length);
  const row = new Float64Array(classes);
  for (let off = 0; off < probs.length; off += classes) {
    let max = -Infinity;
    for (let k = 0; k < classes; k++) {
      row[k] = beta * Math.log(Math.max(probs[off + k]!, TINY));
      max = Math.max(max, row[k]!);
    }
    let sum = 0;
    for (let k = 0; k < classes; k++) sum += row[k] = Math.exp(row[k]! - max);
    for (let k = 0; k < classes; k++) out[off + k] = row[k]! / sum;
  }
  return out;
}

function outputNode(g: KerasGraph): { node: LayerNode; graph: KerasGraph } {
  const ref = g.outputs[0]!;
  const node = g.layers.find((l) => l.name === ref.layer);
  if (!node) throw new CalibrationError(`model ${g.name}: output layer ${ref.layer} not found`);
  if (MODEL_CLASSES.has(node.className)) return outputNode(toKerasGraph({ class_name: node.className, config: node.config }));
  return { node, graph: g };
}

const isSoftmaxActivation = (n: LayerNode) => (n.className === 'Activation' && n.config.activation === 'softmax') || n.className === 'Softmax';

/**
 * The Dense layer whose output the model's final softmax reads: a Dense with a softmax activation, or a linear
 * Dense followed by an Activation('softmax') / Softmax layer (in the same or a nested model).
 */
export function finalLogitsLayer(topology: KerasTopology): string {
  const { node, graph } = outputNode(toKerasGraph(topology));
  if (node.className === 'Dense' && node.config.activation === 'softmax') return node.name;
  if (isSoftmaxActivation(node) && node.calls.length === 1 && node.calls[0]!.length === 1) {
    let prev = graph.layers.find((l) => l.name === node.calls[0]![0]!.layer);
    if (prev && MODEL_CLASSES.has(prev.className)) prev = outputNode(toKerasGraph({ class_name: prev.className, config: prev.config })).node;
    if (prev?.className === 'Dense' && (prev.config.activation ?? 'linear') === 'linear') return prev.name;
  }
  throw new CalibrationError(`the model does not end in a Dense layer feeding a softmax (it ends in ${node.className} ${node.name}), so a temperature cannot be folded into it`);
}

/** A copy of the model whose final logits are divided by `temperature` (the Dense kernel and bias scaled by 1/T). */
export function foldTemperature(a: LayersModelArtifacts, temperature: number): { artifacts: LayersModelArtifacts; layer: string } {
  if (!(temperature > 0 && Number.isFinite(temperature))) throw new CalibrationError(`temperature must be a positive number, got ${temperature}`);
  const layer = finalLogitsLayer(a.modelTopology);
  const weights = decodeWeights(a);
  const isOwn = (name: string, w: string) => {
    const parts = name.split('/');
    return parts[0] === layer && parts[parts.length - 1] === w;
  };
  const scale = 1 / temperature;
  let kernelFound = false;
  for (const [name, w] of weights) {
    if (isOwn(name, 'kernel') || isOwn(name, 'bias')) {
      kernelFound ||= isOwn(name, 'kernel');
      weights.set(name, { ...w, data: Float32Array.from(w.data, (v) => v * scale) });
    }
  }
  if (!kernelFound) throw new CalibrationError(`layer ${layer} has no kernel in the weights manifest`);
  // only float32 weights are rewritten in place; a quantised manifest is re-encoded as float32 (as training does)
  const specsFloat = a.weightSpecs.every((s) => s.dtype === 'float32' && !s.quantization);
  const encoded = specsFloat ? { weightSpecs: a.weightSpecs, weightData: encodeWeights(a.weightSpecs.map((s) => weights.get(s.name)!)).weightData } : encodeWeights([...weights.values()]);
  return { artifacts: { ...a, ...encoded }, layer };
}
