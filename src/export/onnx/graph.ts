/** A small builder for ONNX graphs: nodes, initializers, typed inputs and outputs, then bytes. */
import { AttributeType, DataType, encodeModel } from './proto.js';

export type AttrValue = number | string | number[] | { float: number } | { floats: number[] };

export interface ValueInfo {
  name: string;
  /** Dimensions; a string is a symbolic dimension such as 'batch'. */
  shape: Array<number | string>;
  elemType?: number;
}

export const OPSET = 17;
export const IR_VERSION = 8;

interface NodeSpec { op: string; inputs: string[]; outputs: string[]; name: string; attrs: Record<string, AttrValue> }
interface InitSpec { name: string; dims: number[]; dataType: number; raw: Uint8Array }

function encodeAttr(name: string, v: AttrValue): Record<string, unknown> {
  if (typeof v === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: use { float } for non-integers`);
    return { name, type: AttributeType.INT, i: v };
  }
  if (Array.isArray(v)) return { name, type: AttributeType.INTS, ints: v };
  if ('float' in v) return { name, type: AttributeType.FLOAT, f: v.float };
  return { name, type: AttributeType.FLOATS, floats: v.floats };
}

function valueInfo(v: ValueInfo): Record<string, unknown> {
  return {
    name: v.name,
    type: {
      tensor_type: {
        elem_type: v.elemType ?? DataType.FLOAT,
        shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

export class OnnxGraph {
  private nodes: NodeSpec[] = [];
  private inits: InitSpec[] = [];
  private names = new Set<string>();
  inputs: ValueInfo[] = [];
  outputs: ValueInfo[] = [];
  metadata: Record<string, string> = {};

  /** Returns a graph-unique name derived from `base`. */
  unique(base: string): string {
    const clean = base.replace(/[^A-Za-z0-9_./:-]/g, '_');
    let name = clean;
    for (let i = 1; this.names.has(name); i++) name = `${clean}_${i}`;
    this.names.add(name);
    return name;
  }

  addInput(name: string, shape: Array<number | string>, elemType: number = DataType.FLOAT): string {
    this.names.add(name);
    this.inputs.push({ name, shape, elemType });
    return name;
  }

  addOutput(name: string, shape: Array<number | string>, elemType: number = DataType.FLOAT): void {
    this.outputs.push({ name, shape, elemType });
  }

  /** Adds a node and returns its first output's name. */
  node(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, nameHint = op): string {
    return this.nodeN(op, inputs, 1, attrs, nameHint)[0]!;
  }

  nodeN(op: string, inputs: string[], nOutputs: number, attrs: Record<string, AttrValue> = {}, nameHint = op): string[] {
    const name = this.unique(nameHint);
    const outputs = Array.from({ length: nOutputs }, (_, i) => (i === 0 ? name : this.unique(`${name}:${i}`)));
    this.nodes.push({ op, inputs, outputs, name, attrs });
    return outputs;
  }

  /** Renames the output of the node that produced `from` (used to give graph outputs stable names). */
  renameValue(from: string, to: string): void {
    for (const n of this.nodes) {
      n.outputs = n.outputs.map((o) => (o === from ? to : o));
      n.inputs = n.inputs.map((o) => (o === from ? to : o));
    }
    this.names.add(to);
  }

  floatTensor(nameHint: string, data: Float32Array, dims: number[]): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (expected !== data.length) throw new Error(`initializer ${nameHint}: ${data.length} values for shape [${dims}]`);
    const name = this.unique(nameHint);
    const copy = new Float32Array(data);
    this.inits.push({ name, dims, dataType: DataType.FLOAT, raw: new Uint8Array(copy.buffer) });
    return name;
  }

  int64Tensor(nameHint: string, data: number[], dims: number[] = [data.length]): string {
    const name = this.unique(nameHint);
    const big = new BigInt64Array(data.map((d) => BigInt(d)));
    this.inits.push({ name, dims, dataType: DataType.INT64, raw: new Uint8Array(big.buffer) });
    return name;
  }

  scalar(nameHint: string, value: number): string {
    return this.floatTensor(nameHint, new Float32Array([value]), []);
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  opTypes(): string[] {
    return this.nodes.map((n) => n.op);
  }

  toBytes(graphName = 'tlearn', docString = ''): Uint8Array {
    return encodeModel({
      ir_version: IR_VERSION,
      opset_import: [{ domain: '', version: OPSET }],
      producer_name: 'tlearn',
      doc_string: docString,
      graph: {
        name: graphName,
        node: this.nodes.map((n) => ({
          name: n.name,
          op_type: n.op,
          input: n.inputs,
          output: n.outputs,
          attribute: Object.entries(n.attrs).map(([k, v]) => encodeAttr(k, v)),
        })),
        initializer: this.inits.map((t) => ({ name: t.name, dims: t.dims, data_type: t.dataType, raw_data: t.raw })),
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
      },
      metadata_props: Object.entries(this.metadata).map(([key, value]) => ({ key, value })),
    });
  }
}
