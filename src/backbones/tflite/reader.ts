/**
 * Reads a `.tflite` file (a TensorFlow Lite flatbuffer) into plain typed objects: tensors with their shapes, types,
 * quantization and constant data, and operators with their options. The `flatbuffers` runtime does the byte
 * access; every offset is checked against the file's length, so a truncated or corrupt file is a clear error,
 * never a garbage model.
 */
import { ByteBuffer } from 'flatbuffers';
import { Builtin, builtinName, F, TENSOR_TYPE_NAMES, TFLITE_IDENTIFIER } from './schema.js';

export class TfliteFormatError extends Error {}

export interface TfliteQuantization {
  scale: Float32Array;
  zeroPoint: number[];
  /** The axis that per-channel scales run along. */
  axis: number;
}

export interface TfliteTensor {
  index: number;
  name: string;
  shape: number[];
  /** TensorType value (schema.ts TensorType). */
  type: number;
  typeName: string;
  /** Constant data (weights, biases, shapes), or undefined for activations. */
  data?: Uint8Array;
  quantization?: TfliteQuantization;
}

export type Options = Record<string, number | boolean | number[]>;

export interface TfliteOperator {
  index: number;
  /** Builtin code, or -1 for a custom operator. */
  code: number;
  /** The schema's name (CONV_2D ...) or the custom code. */
  opName: string;
  version: number;
  inputs: number[];
  outputs: number[];
  options: Options;
}

export interface TfliteModel {
  file: string;
  version: number;
  description: string;
  tensors: TfliteTensor[];
  inputs: number[];
  outputs: number[];
  operators: TfliteOperator[];
  subgraphCount: number;
}

/** A flatbuffers table over a ByteBuffer, with bounds-checked reads. */
class Reader {
  constructor(
    readonly bb: ByteBuffer,
    private readonly file: string,
  ) {}

  fail(what: string): never {
    throw new TfliteFormatError(`${this.file}: not a valid TFLite model (${what}); the file may be truncated or corrupt`);
  }

  check(pos: number, len: number, what: string): void {
    if (!Number.isInteger(pos) || pos < 0 || pos + len > this.bb.capacity()) this.fail(`${what} lies outside the file`);
  }

  /** Absolute position of field `i` of the table at `table`, or 0 when absent. */
  field(table: number, i: number): number {
    this.check(table, 4, 'a table');
    const vtable = table - this.bb.readInt32(table);
    this.check(vtable, 4, 'a vtable');
    const vlen = this.bb.readUint16(vtable);
    const slot = 4 + 2 * i;
    if (slot >= vlen) return 0;
    this.check(vtable + slot, 2, 'a vtable entry');
    const off = this.bb.readUint16(vtable + slot);
    return off ? table + off : 0;
  }

  int(table: number, i: number, bytes: 1 | 2 | 4, signed: boolean, dflt = 0): number {
    const p = this.field(table, i);
    if (!p) return dflt;
    this.check(p, bytes, 'a scalar field');
    if (bytes === 1) return signed ? this.bb.readInt8(p) : this.bb.readUint8(p);
    if (bytes === 2) return signed ? this.bb.readInt16(p) : this.bb.readUint16(p);
    return signed ? this.bb.readInt32(p) : this.bb.readUint32(p);
  }

  u64(table: number, i: number): number {
    const p = this.field(table, i);
    if (!p) return 0;
    this.check(p, 8, 'a scalar field');
    return Number(this.bb.readUint64(p));
  }

  float(table: number, i: number, dflt = 0): number {
    const p = this.field(table, i);
    if (!p) return dflt;
    this.check(p, 4, 'a scalar field');
    return this.bb.readFloat32(p);
  }

  /** The table a field points to, or 0. */
  table(table: number, i: number): number {
    const p = this.field(table, i);
    if (!p) return 0;
    this.check(p, 4, 'an offset');
    const t = p + this.bb.readUint32(p);
    this.check(t, 4, 'a table');
    return t;
  }

  /** A vector field: its first element's position and length (elements of `elem` bytes). */
  vector(table: number, i: number, elem: number): { start: number; length: number } {
    const p = this.field(table, i);
    if (!p) return { start: 0, length: 0 };
    this.check(p, 4, 'an offset');
    const v = p + this.bb.readUint32(p);
    this.check(v, 4, 'a vector');
    const length = this.bb.readUint32(v);
    this.check(v + 4, length * elem, 'a vector');
    return { start: v + 4, length };
  }

  ints(table: number, i: number): number[] {
    const { start, length } = this.vector(table, i, 4);
    return Array.from({ length }, (_, k) => this.bb.readInt32(start + 4 * k));
  }

  floats(table: number, i: number): Float32Array {
    const { start, length } = this.vector(table, i, 4);
    return Float32Array.from({ length }, (_, k) => this.bb.readFloat32(start + 4 * k));
  }

  longs(table: number, i: number): number[] {
    const { start, length } = this.vector(table, i, 8);
    return Array.from({ length }, (_, k) => Number(this.bb.readInt64(start + 8 * k)));
  }

  bytes(table: number, i: number): Uint8Array {
    const { start, length } = this.vector(table, i, 1);
    return this.bb.bytes().subarray(start, start + length);
  }

  /** The tables of a vector of tables. */
  tables(table: number, i: number): number[] {
    const { start, length } = this.vector(table, i, 4);
    return Array.from({ length }, (_, k) => {
      const p = start + 4 * k;
      const t = p + this.bb.readUint32(p);
      this.check(t, 4, 'a table');
      return t;
    });
  }

  string(table: number, i: number): string {
    const b = this.bytes(table, i);
    return new TextDecoder().decode(b);
  }
}

/** Options of the operators tlearn converts, by operator name. */
const OPTION_FIELDS: Record<string, { table: Record<string, number>; types: Record<string, 'i32' | 'i8' | 'bool' | 'f32' | 'ints'> }> = {
  CONV_2D: { table: F.Conv2DOptions, types: { padding: 'i8', stride_w: 'i32', stride_h: 'i32', fused_activation_function: 'i8', dilation_w_factor: 'i32', dilation_h_factor: 'i32' } },
  DEPTHWISE_CONV_2D: {
    table: F.DepthwiseConv2DOptions,
    types: { padding: 'i8', stride_w: 'i32', stride_h: 'i32', depth_multiplier: 'i32', fused_activation_function: 'i8', dilation_w_factor: 'i32', dilation_h_factor: 'i32' },
  },
  AVERAGE_POOL_2D: { table: F.Pool2DOptions, types: { padding: 'i8', stride_w: 'i32', stride_h: 'i32', filter_width: 'i32', filter_height: 'i32', fused_activation_function: 'i8' } },
  MAX_POOL_2D: { table: F.Pool2DOptions, types: { padding: 'i8', stride_w: 'i32', stride_h: 'i32', filter_width: 'i32', filter_height: 'i32', fused_activation_function: 'i8' } },
  FULLY_CONNECTED: { table: F.FullyConnectedOptions, types: { fused_activation_function: 'i8', weights_format: 'i8', keep_num_dims: 'bool' } },
  SOFTMAX: { table: F.SoftmaxOptions, types: { beta: 'f32' } },
  CONCATENATION: { table: F.ConcatenationOptions, types: { axis: 'i32', fused_activation_function: 'i8' } },
  ADD: { table: F.AddOptions, types: { fused_activation_function: 'i8' } },
  MUL: { table: F.MulOptions, types: { fused_activation_function: 'i8' } },
  RESHAPE: { table: F.ReshapeOptions, types: { new_shape: 'ints' } },
  MEAN: { table: F.ReducerOptions, types: { keep_dims: 'bool' } },
  SQUEEZE: { table: F.SqueezeOptions, types: { squeeze_dims: 'ints' } },
};

const DEFAULTS: Record<string, number> = { dilation_w_factor: 1, dilation_h_factor: 1, beta: 0 };

function readOptions(r: Reader, op: number, name: string): Options {
  const spec = OPTION_FIELDS[name];
  const out: Options = {};
  if (!spec) return out;
  const t = r.table(op, F.Operator.builtin_options);
  for (const [key, kind] of Object.entries(spec.types)) {
    const i = spec.table[key]!;
    const d = DEFAULTS[key] ?? 0;
    if (!t) {
      out[key] = kind === 'ints' ? [] : kind === 'bool' ? false : d;
      continue;
    }
    if (kind === 'i32') out[key] = r.int(t, i, 4, true, d);
    else if (kind === 'i8') out[key] = r.int(t, i, 1, true, d);
    else if (kind === 'bool') out[key] = r.int(t, i, 1, false, 0) !== 0;
    else if (kind === 'f32') out[key] = r.float(t, i, d);
    else out[key] = r.ints(t, i);
  }
  return out;
}

const ELEM_BYTES: Record<number, number> = { 0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1 };

/** Parses a `.tflite` file's bytes. `file` names it in errors. */
export function readTflite(bytes: Uint8Array, file: string): TfliteModel {
  if (bytes.length < 8) throw new TfliteFormatError(`${file}: not a TFLite model (${bytes.length} bytes; the file is empty or truncated)`);
  const bb = new ByteBuffer(bytes);
  const r = new Reader(bb, file);
  const ident = String.fromCharCode(...bytes.subarray(4, 8));
  if (ident !== TFLITE_IDENTIFIER) {
    throw new TfliteFormatError(`${file}: not a TFLite model (file identifier ${JSON.stringify(ident)}, expected "${TFLITE_IDENTIFIER}")`);
  }
  const root = bb.readUint32(0);
  r.check(root, 4, 'the root table');

  const version = r.int(root, F.Model.version, 4, false);
  const description = r.string(root, F.Model.description);
  const codes = r.tables(root, F.Model.operator_codes).map((t) => {
    const dep = r.int(t, F.OperatorCode.deprecated_builtin_code, 1, true);
    const ext = r.int(t, F.OperatorCode.builtin_code, 4, true);
    const code = Math.max(dep, ext);
    const custom = r.string(t, F.OperatorCode.custom_code);
    return { code, name: code === Builtin.CUSTOM ? `CUSTOM (${custom || 'unnamed'})` : builtinName(code), version: r.int(t, F.OperatorCode.version, 4, true, 1) };
  });
  const buffers = r.tables(root, F.Model.buffers);
  const subgraphs = r.tables(root, F.Model.subgraphs);
  if (!subgraphs.length) r.fail('no subgraph');
  const sg = subgraphs[0]!;

  const tensors: TfliteTensor[] = r.tables(sg, F.SubGraph.tensors).map((t, index) => {
    const type = r.int(t, F.Tensor.type, 1, true);
    const shape = r.ints(t, F.Tensor.shape);
    const bufIndex = r.int(t, F.Tensor.buffer, 4, false);
    let data: Uint8Array | undefined;
    if (bufIndex > 0) {
      const b = buffers[bufIndex];
      if (b === undefined) r.fail(`tensor ${index} refers to buffer ${bufIndex} of ${buffers.length}`);
      data = r.bytes(b, F.Buffer.data);
      if (!data.length) {
        const offset = r.u64(b, F.Buffer.offset);
        const size = r.u64(b, F.Buffer.size);
        if (offset > 1) {
          r.check(offset, size, 'a buffer');
          data = bytes.subarray(offset, offset + size);
        }
      }
      if (!data.length) data = undefined;
    }
    const name = r.string(t, F.Tensor.name) || `tensor_${index}`;
    if (data) {
      const expected = shape.reduce((a, b) => a * b, 1) * (ELEM_BYTES[type] ?? 1);
      if (ELEM_BYTES[type] && data.length !== expected) r.fail(`tensor ${name} holds ${data.length} bytes, its shape [${shape}] needs ${expected}`);
    }
    const q = r.table(t, F.Tensor.quantization);
    let quantization: TfliteQuantization | undefined;
    if (q) {
      const scale = r.floats(q, F.QuantizationParameters.scale);
      const zeroPoint = r.longs(q, F.QuantizationParameters.zero_point);
      if (scale.length) {
        quantization = { scale, zeroPoint: zeroPoint.length ? zeroPoint : Array(scale.length).fill(0), axis: r.int(q, F.QuantizationParameters.quantized_dimension, 4, true) };
      }
    }
    return { index, name, shape, type, typeName: TENSOR_TYPE_NAMES[type] ?? `type ${type}`, data, quantization };
  });
  const checkTensor = (i: number, where: string): number => {
    if (i >= tensors.length) r.fail(`${where} refers to tensor ${i} of ${tensors.length}`);
    return i;
  };
  const operators: TfliteOperator[] = r.tables(sg, F.SubGraph.operators).map((op, index) => {
    const ci = r.int(op, F.Operator.opcode_index, 4, false);
    const c = codes[ci];
    if (!c) r.fail(`operator ${index} refers to operator code ${ci} of ${codes.length}`);
    const where = `operator ${index} (${c.name})`;
    return {
      index,
      code: c.code,
      opName: c.name,
      version: c.version,
      inputs: r.ints(op, F.Operator.inputs).map((i) => (i < 0 ? i : checkTensor(i, where))),
      outputs: r.ints(op, F.Operator.outputs).map((i) => checkTensor(i, where)),
      options: readOptions(r, op, c.name),
    };
  });
  return {
    file,
    version,
    description,
    tensors,
    inputs: r.ints(sg, F.SubGraph.inputs).map((i) => checkTensor(i, 'the model input')),
    outputs: r.ints(sg, F.SubGraph.outputs).map((i) => checkTensor(i, 'the model output')),
    operators,
    subgraphCount: subgraphs.length,
  };
}
