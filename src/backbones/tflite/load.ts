/**
 * `.tflite` files as backbones: read and checked here (the model, its input, where its features are); the
 * conversion to ONNX happens where the model is run (onnx/tflite/convert.ts, from features/ and classifier/).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ResizeMode } from '../../image/decode.js';
import { sha256 } from '../../util/hash.js';
import type { PreprocessMode } from '../preprocess.js';
import { countTfliteParams, describeOps, findFeatureTensor, hasWeightZeroPoints, isQuantizedModel, resolveCut, TfliteConvertError } from './graph.js';
import { readTflite, TfliteFormatError, type TfliteModel } from './reader.js';
import { TensorType } from './schema.js';

/**
 * How a TFLite model is run on onnxruntime: 'qlinear', its integer graph in onnxruntime's integer operators
 * (the default for quantized models); 'qdq', float operators between QuantizeLinear/DequantizeLinear pairs;
 * 'float', dequantized to float32 (the default for float models, and --dequantize).
 */
export type TfliteForm = 'qlinear' | 'qdq' | 'float';
export const TFLITE_FORMS: TfliteForm[] = ['qlinear', 'qdq', 'float'];

export interface TfliteFile {
  file: string;
  bytes: Uint8Array;
  model: TfliteModel;
  /** SHA-256 of the file. */
  hash: string;
}

export function isTflitePath(p: string): boolean {
  return /\.tflite$/i.test(p);
}

/** Reads and parses a .tflite file; a missing, truncated or foreign file is a TfliteFormatError naming it. */
export async function readTfliteFile(file: string): Promise<TfliteFile> {
  const abs = path.resolve(file);
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(abs);
  } catch (e: any) {
    throw new TfliteFormatError(e.code === 'ENOENT' ? `${file} does not exist` : `${file}: cannot read it (${e.message})`);
  }
  const u8 = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { file: abs, bytes: u8, model: readTflite(u8, abs), hash: sha256(u8) };
}

/** Checks that the model takes one RGB image [1, h, w, 3]; returns [h, w]. */
export function tfliteImageInput(m: TfliteModel): [number, number] {
  if (m.inputs.length !== 1) throw new TfliteConvertError(`${m.file}: the model has ${m.inputs.length} inputs; an image model has one`);
  const t = m.tensors[m.inputs[0]!]!;
  if (t.shape.length !== 4 || t.shape[3] !== 3 || !(t.shape[1]! > 0) || !(t.shape[2]! > 0)) {
    throw new TfliteConvertError(`${m.file}: not an image model: its input ${t.name} has shape [${t.shape}] (rank ${t.shape.length}); tlearn needs [1, height, width, 3] (RGB images)`);
  }
  if (t.type !== TensorType.FLOAT32 && t.type !== TensorType.UINT8 && t.type !== TensorType.INT8) {
    throw new TfliteConvertError(`${m.file}: its input is ${t.typeName}; tlearn feeds float32, uint8 or int8 images`);
  }
  return [t.shape[1]!, t.shape[2]!];
}

/** Integer inputs take the pixels themselves (0..255); float inputs are assumed to take x / 127.5 - 1 unless told. */
export function tflitePreprocessing(m: TfliteModel, given?: PreprocessMode): PreprocessMode {
  if (given) return given;
  const t = m.tensors[m.inputs[0]!]!;
  return t.type === TensorType.FLOAT32 ? 'tf' : 'raw';
}

export interface TfliteBackboneSpec {
  /** The parsed model (converted to ONNX where it is run). */
  model: TfliteModel;
  form: TfliteForm;
  cutAt?: string;
  /** Weights with a zero point kept as they are (see tfliteToOnnx's exactWeights). */
  exactWeights?: boolean;
}

export interface TfliteBackboneOptions {
  cutAt?: string;
  preprocessing?: PreprocessMode;
  /** Default: 'qlinear' for a quantized model, 'float' otherwise. */
  form?: TfliteForm;
  /** 'qlinear': keep weights that have a zero point exactly (slower; default: requantized to symmetric int8 per channel, exact in all but a few channels; see tfliteToOnnx). */
  exactWeights?: boolean;
}

/** The fields of a Backbone (backbones/load.ts) for a .tflite file. */
export interface TfliteBackbone {
  name: string;
  source: string;
  inputSize: [number, number];
  preprocessing: PreprocessMode;
  resize: ResizeMode;
  id: string;
  params: number;
  note: string;
  tflite: TfliteBackboneSpec;
}

/** A .tflite image model as a feature extractor: features from its pooled layer (found automatically) or `cutAt`. */
export async function loadTfliteBackbone(file: string, opts: TfliteBackboneOptions = {}): Promise<TfliteBackbone> {
  const f = await readTfliteFile(file);
  const m = f.model;
  const inputSize = tfliteImageInput(m);
  const quantized = isQuantizedModel(m);
  const form: TfliteForm = opts.form ?? (quantized ? 'qlinear' : 'float');
  let where: string;
  if (opts.cutAt) where = `cut at ${m.tensors[resolveCut(m, opts.cutAt)]!.name}, global average pooling`;
  else {
    const found = findFeatureTensor(m);
    if (!found) throw new TfliteConvertError(`${file}: found no global pooling layer to take features from; pass --cut-at <tensor name or operator number>`);
    where = found.note;
  }
  const kind = quantized ? `${m.tensors[m.inputs[0]!]!.typeName.toLowerCase()} quantized TFLite` : 'float TFLite';
  const requantized = form === 'qlinear' && !opts.exactWeights && hasWeightZeroPoints(m);
  const run = form === 'qlinear' ? `integer operators${requantized ? ', weights requantized to symmetric int8 per channel' : ''}` : form === 'qdq' ? 'QDQ operators' : quantized ? 'dequantized to float' : 'float';
  return {
    name: path.basename(f.file).replace(/\.tflite$/i, ''),
    source: f.file,
    inputSize,
    preprocessing: tflitePreprocessing(m, opts.preprocessing),
    resize: 'squash',
    id: sha256(`${f.hash}|${form}|${opts.cutAt ?? ''}${requantized ? '|requantized-weights' : ''}`).slice(0, 16),
    params: countTfliteParams(m),
    note: `${kind} (${run} on onnxruntime), features from ${where}`,
    tflite: { model: m, form, cutAt: opts.cutAt, exactWeights: !requantized },
  };
}

export interface TfliteModelInfo {
  file: string;
  name: string;
  quantized: boolean;
  inputType: string;
  inputSize: [number, number];
  params: number;
  bytes: number;
  ops: string;
  /** Why it cannot be a backbone, when it cannot. */
  problem?: string;
}

/** Every .tflite file in a folder (not recursive), with what it is; for tables such as `npm run bench:backbones`. */
export async function listTfliteBackbones(dir: string): Promise<TfliteModelInfo[]> {
  const names = (await fs.readdir(dir).catch(() => [] as string[])).filter(isTflitePath).sort();
  const out: TfliteModelInfo[] = [];
  for (const n of names) {
    const file = path.join(dir, n);
    try {
      const f = await readTfliteFile(file);
      const m = f.model;
      const info: TfliteModelInfo = {
        file,
        name: n.replace(/\.tflite$/i, ''),
        quantized: isQuantizedModel(m),
        inputType: m.tensors[m.inputs[0]!]?.typeName ?? '?',
        inputSize: [0, 0],
        params: countTfliteParams(m),
        bytes: f.bytes.length,
        ops: describeOps(m),
      };
      try {
        info.inputSize = tfliteImageInput(m);
        if (!findFeatureTensor(m)) info.problem = 'no global pooling layer (use --cut-at)';
      } catch (e: any) {
        info.problem = e.message;
      }
      out.push(info);
    } catch (e: any) {
      out.push({ file, name: n, quantized: false, inputType: '?', inputSize: [0, 0], params: 0, bytes: 0, ops: '', problem: e.message });
    }
  }
  return out;
}

export { TfliteConvertError, TfliteFormatError };
