/**
 * Keras-style model summaries ("Layer (type) / Output Shape / Param #" and the totals), in the layout Keras 2
 * prints for sequential-like models, which is what the classic notebook shows. Nested models (a backbone inside
 * a classifier) are expanded layer by layer.
 */
import type * as TF from '@tensorflow/tfjs';
import type { KerasTopology } from '../backbones/layers-model.js';
import { getTf } from '../runtime/tfjs.js';

export interface SummaryRow {
  name: string;
  type: string;
  outputShape: string;
  params: number;
  trainable: boolean;
  /** Parameters the layer trains when it is trainable (a BatchNormalization layer's moving statistics never train). */
  trainableParams?: number;
}

export interface ModelSummary {
  name: string;
  rows: SummaryRow[];
  total: number;
  trainable: number;
  nonTrainable: number;
  text: string;
}

export interface SummaryOptions {
  /** Which layers count as trainable (default: every layer). Receives the layer name. */
  trainable?: (layerName: string) => boolean;
  lineLength?: number;
}

function shapeText(s: unknown): string {
  if (Array.isArray(s) && Array.isArray(s[0])) return s.map(shapeText).join(', ');
  if (!Array.isArray(s)) return String(s);
  const dims = s.map((d) => (d === null ? 'None' : String(d)));
  return `(${dims.join(', ')}${dims.length === 1 ? ',' : ''})`;
}

function collect(layer: TF.layers.Layer, rows: SummaryRow[], trainable: (n: string) => boolean): void {
  const inner = (layer as any).layers as TF.layers.Layer[] | undefined;
  if (inner && (layer as any).inputs) {
    for (const l of inner) collect(l, rows, trainable);
    return;
  }
  const size = (ws: TF.LayerVariable[]) => ws.reduce((a, w) => a + w.shape.reduce((p: number, d) => p * (d ?? 1), 1), 0);
  rows.push({ name: layer.name, type: layer.getClassName(), outputShape: shapeText(layer.outputShape), params: layer.countParams(), trainable: trainable(layer.name), trainableParams: size(layer.trainableWeights) });
}

export function formatSummary(name: string, rows: SummaryRow[], lineLength = 65): ModelSummary {
  const pos = [Math.floor(lineLength * 0.45), Math.floor(lineLength * 0.85), lineLength];
  const line = (cells: string[]) => {
    let s = '';
    cells.forEach((c, i) => {
      s += c;
      s = s.slice(0, pos[i]!).padEnd(pos[i]!);
    });
    return s;
  };
  const total = rows.reduce((a, r) => a + r.params, 0);
  const trainable = rows.filter((r) => r.trainable).reduce((a, r) => a + (r.trainableParams ?? r.params), 0);
  const fmt = (n: number) => n.toLocaleString('en-US');
  const out = [`Model: "${name}"`, '_'.repeat(lineLength), line(['Layer (type)', 'Output Shape', 'Param #']), '='.repeat(lineLength)];
  rows.forEach((r, i) => {
    out.push(line([`${r.name} (${r.type})`, r.outputShape, String(r.params)]));
    out.push(i === rows.length - 1 ? '='.repeat(lineLength) : '_'.repeat(lineLength));
  });
  if (!rows.length) out.push('='.repeat(lineLength));
  out.push(`Total params: ${fmt(total)}`, `Trainable params: ${fmt(trainable)}`, `Non-trainable params: ${fmt(total - trainable)}`, '_'.repeat(lineLength));
  return { name, rows, total, trainable, nonTrainable: total - trainable, text: out.map((l) => l.trimEnd()).join('\n') };
}

/** Summary of a model topology (built with tfjs to get shapes and parameter counts; weights are not needed). */
export async function summarizeTopology(topology: KerasTopology, o: SummaryOptions = {}): Promise<ModelSummary> {
  const tf = await getTf();
  const model = await tf.models.modelFromJSON({ modelTopology: topology as any } as any);
  try {
    const rows: SummaryRow[] = [];
    for (const l of model.layers) collect(l, rows, o.trainable ?? (() => true));
    return formatSummary(model.name, rows, o.lineLength);
  } finally {
    model.dispose();
  }
}
