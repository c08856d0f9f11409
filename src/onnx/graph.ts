/** A small builder for ONNX graphs: nodes, initializers, typed inputs and outputs, then bytes. */
import { AttributeType, DataType, encodeModel } from './proto.js';

export type AttrValue = number | string | number[] | { float: number } | { floats: number[] };

export interface ValueInfo {
  name: string;
  /** Dimensions; a string is a symbolic dimension such as 'batch'; undefined = unknown rank. */
  shape?: Array<number | string>;
  elemType?: number;
}

export const OPSET = 17;
export const IR_VERSION = 8;

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attrs: Record<string, AttrValue>;
}

export interface InitSpec {
  name: string;
  dims: number[];
  dataType: number;
  /** Float32Array for FLOAT, BigInt64Array for INT64. */
  data: Float32Array | BigInt64Array;
}

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
  const tensor: Record<string, unknown> = { elem_type: v.elemType ?? DataType.FLOAT };
  if (v.shape) tensor.shape = { dim: v.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) };
  return { name: v.name, type: { tensor_type: tensor } };
}

export class OnnxGraph {
  readonly nodes: NodeSpec[] = [];
  readonly inits: InitSpec[] = [];
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

  addInput(name: string, shape: Array<number | string> | undefined, elemType: number = DataType.FLOAT): string {
    this.names.add(name);
    this.inputs.push({ name, shape, elemType });
    return name;
  }

  addOutput(name: string, shape?: Array<number | string>, elemType: number = DataType.FLOAT): void {
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

  /** Renames a value everywhere it is produced or consumed (used to give graph outputs stable names). */
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
    this.inits.push({ name, dims, dataType: DataType.FLOAT, data: new Float32Array(data) });
    return name;
  }

  int64Tensor(nameHint: string, data: number[], dims: number[] = [data.length]): string {
    const name = this.unique(nameHint);
    this.inits.push({ name, dims, dataType: DataType.INT64, data: new BigInt64Array(data.map((d) => BigInt(d))) });
    return name;
  }

  scalar(nameHint: string, value: number): string {
    return this.floatTensor(nameHint, new Float32Array([value]), []);
  }

  initializer(name: string): InitSpec | undefined {
    return this.inits.find((i) => i.name === name);
  }

  /** Turns an initializer into a graph input of the same name and shape (e.g. a weight that is trained). */
  initializerToInput(name: string): InitSpec {
    const i = this.inits.findIndex((x) => x.name === name);
    if (i < 0) throw new Error(`no initializer named ${name}`);
    const [init] = this.inits.splice(i, 1);
    this.inputs.push({ name, shape: init!.dims, elemType: init!.dataType });
    return init!;
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
        initializer: this.inits.map((t) => ({ name: t.name, dims: t.dims, data_type: t.dataType, raw_data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) })),
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
      },
      metadata_props: Object.entries(this.metadata).map(([key, value]) => ({ key, value })),
    });
  }
}
