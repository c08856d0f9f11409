/**
 * An ONNX graph builder for imported models: like OnnxGraph, but nodes may come from the com.microsoft domain
 * (onnxruntime's quantized contrib operators) and initializers may be uint8, int8 or int32 as well as float.
 */
import { AttributeType, DataType, encodeModel } from '../proto.js';
import { IR_VERSION, OPSET, type AttrValue } from '../graph.js';

export const MS_DOMAIN = 'com.microsoft';

type InitData = Float32Array | Uint8Array | Int8Array | Int32Array | BigInt64Array;

interface Node {
  op: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attrs: Record<string, AttrValue>;
}

interface Init {
  name: string;
  dims: number[];
  dataType: number;
  data: InitData;
}

export interface IoSpec {
  name: string;
  shape: Array<number | string>;
  elemType: number;
}

function encodeAttr(name: string, v: AttrValue): Record<string, unknown> {
  if (typeof v === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: AttributeType.INT, i: v } : { name, type: AttributeType.FLOAT, f: v };
  if (Array.isArray(v)) return { name, type: AttributeType.INTS, ints: v };
  if ('float' in v) return { name, type: AttributeType.FLOAT, f: v.float };
  return { name, type: AttributeType.FLOATS, floats: v.floats };
}

function dataTypeOf(d: InitData): number {
  if (d instanceof Float32Array) return DataType.FLOAT;
  if (d instanceof Uint8Array) return DataType.UINT8;
  if (d instanceof Int8Array) return DataType.INT8;
  if (d instanceof Int32Array) return DataType.INT32;
  return DataType.INT64;
}

export class ImportGraph {
  private readonly nodes: Node[] = [];
  private readonly inits: Init[] = [];
  private readonly names = new Set<string>();
  private readonly consts = new Map<string, string>();
  inputs: IoSpec[] = [];
  outputs: IoSpec[] = [];
  metadata: Record<string, string> = {};
  usesMs = false;

  unique(base: string): string {
    const clean = base.replace(/[^A-Za-z0-9_./:-]/g, '_').slice(0, 80);
    let name = clean;
    for (let i = 1; this.names.has(name); i++) name = `${clean}_${i}`;
    this.names.add(name);
    return name;
  }

  node(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, hint = op, domain = ''): string {
    const name = this.unique(hint);
    if (domain === MS_DOMAIN) this.usesMs = true;
    this.nodes.push({ op, domain, inputs, outputs: [name], name, attrs });
    return name;
  }

  tensor(hint: string, data: InitData, dims: number[]): string {
    const n = dims.reduce((a, b) => a * b, 1);
    if (n !== data.length) throw new Error(`internal error: initializer ${hint} has ${data.length} values for shape [${dims}]`);
    const name = this.unique(hint);
    this.inits.push({ name, dims, dataType: dataTypeOf(data), data });
    return name;
  }

  /** A shared small constant (scales, zero points, shapes), keyed by its type and values. */
  constant(data: InitData, dims: number[] = [data.length]): string {
    const key = `${dataTypeOf(data)}|${dims}|${Array.from(data as ArrayLike<number | bigint>).join(',')}`;
    const hit = this.consts.get(key);
    if (hit) return hit;
    const name = this.tensor('const', data, dims);
    this.consts.set(key, name);
    return name;
  }

  int64(values: number[]): string {
    return this.constant(new BigInt64Array(values.map((v) => BigInt(v))));
  }

  get opTypes(): string[] {
    return this.nodes.map((n) => (n.domain ? `${n.domain}.${n.op}` : n.op));
  }

  toBytes(graphName: string, doc = ''): Uint8Array {
    const opset = [{ domain: '', version: OPSET }];
    if (this.usesMs) opset.push({ domain: MS_DOMAIN, version: 1 });
    return encodeModel({
      ir_version: IR_VERSION,
      opset_import: opset,
      producer_name: 'tlearn',
      doc_string: doc,
      graph: {
        name: graphName,
        node: this.nodes.map((n) => ({
          name: n.name,
          op_type: n.op,
          ...(n.domain ? { domain: n.domain } : {}),
          input: n.inputs,
          output: n.outputs,
          attribute: Object.entries(n.attrs).map(([k, v]) => encodeAttr(k, v)),
        })),
        initializer: this.inits.map((t) => ({ name: t.name, dims: t.dims, data_type: t.dataType, raw_data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) })),
        input: this.inputs.map(io),
        output: this.outputs.map(io),
      },
      metadata_props: Object.entries(this.metadata).map(([key, value]) => ({ key, value })),
    });
  }
}

function io(v: IoSpec): Record<string, unknown> {
  return { name: v.name, type: { tensor_type: { elem_type: v.elemType, shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } } };
}
