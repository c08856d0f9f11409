/**
 * Two ONNX models chained into one: the first's output feeds the second's input (a feature extractor and a
 * head). The second's names are prefixed so nothing collides; the opsets are merged.
 */
import { decodeModel, encodeModel } from './proto.js';

export function chainOnnx(first: Uint8Array, second: Uint8Array, opts: { graphName?: string; prefix?: string; metadata?: Record<string, string> } = {}): Uint8Array {
  const a = decodeModel(first);
  const b = decodeModel(second);
  const ga = a.graph;
  const gb = b.graph;
  if ((ga.output ?? []).length !== 1 || (gb.input ?? []).length < 1) throw new Error('internal error: chainOnnx needs one output in the first model and an input in the second');
  const initB = new Set((gb.initializer ?? []).map((t: any) => t.name));
  const feedName = gb.input.find((i: any) => !initB.has(i.name)).name;
  const link = ga.output[0].name;
  const prefix = opts.prefix ?? 'head/';
  const rename = (n: string): string => (n === feedName ? link : n ? prefix + n : n);
  const nodes = (gb.node ?? []).map((n: any) => ({ ...n, name: n.name ? prefix + n.name : n.name, input: (n.input ?? []).map(rename), output: (n.output ?? []).map(rename) }));
  const opsets = new Map<string, number>();
  for (const o of [...(a.opset_import ?? []), ...(b.opset_import ?? [])]) opsets.set(o.domain ?? '', Math.max(opsets.get(o.domain ?? '') ?? 0, Number(o.version)));
  return encodeModel({
    ir_version: Math.max(Number(a.ir_version ?? 0), Number(b.ir_version ?? 0)),
    opset_import: [...opsets].map(([domain, version]) => ({ domain, version })),
    producer_name: 'tlearn',
    doc_string: [a.doc_string, b.doc_string].filter(Boolean).join('; then '),
    graph: {
      name: opts.graphName ?? ga.name,
      node: [...(ga.node ?? []), ...nodes],
      initializer: [...(ga.initializer ?? []), ...(gb.initializer ?? []).map((t: any) => ({ ...t, name: prefix + t.name }))],
      input: ga.input,
      output: (gb.output ?? []).map((o: any) => ({ ...o, name: rename(o.name) })),
    },
    metadata_props: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
}

/** The model with its output value renamed and metadata_props replaced (for shipping an imported model). */
export function withOutputAndMetadata(bytes: Uint8Array, outputName: string, metadata: Record<string, string>, docString?: string): Uint8Array {
  const m = decodeModel(bytes);
  const g = m.graph;
  const from = g.output[0].name;
  const rename = (n: string): string => (n === from ? outputName : n);
  g.node = (g.node ?? []).map((n: any) => ({ ...n, input: (n.input ?? []).map(rename), output: (n.output ?? []).map(rename) }));
  g.output = g.output.map((o: any) => ({ ...o, name: rename(o.name) }));
  m.metadata_props = Object.entries(metadata).map(([key, value]) => ({ key, value }));
  if (docString) m.doc_string = docString;
  return encodeModel(m);
}
