/**
 * Checkpoint files: a versioned, extensible training state in one file, written atomically (a temporary file
 * flushed to disk, then renamed), so a run killed at any moment leaves the previous checkpoint or the new one,
 * never a mix. Layout: the magic `TLCKPT01`, a little-endian u32 header length, a JSON header
 * `{ version, meta, tensors: [{ name, offset, length, dtype }] }`, then the tensors: float32, or float64 (e.g. sums
 * of weights), each 8-byte aligned.
 * `meta` is any JSON (epoch, step, generator states, history...); tensors are named (`weights/3`,
 * `optimizer/3/0`, `ema/3`...), so new kinds of state are new names and old readers ignore them.
 */
import { promises as fs } from 'node:fs';
import { writeFileAtomic } from '../util/fs.js';

const MAGIC = 'TLCKPT01';
export const CHECKPOINT_VERSION = 1;

export class CheckpointError extends Error {}

export type CheckpointTensor = Float32Array | Float64Array;

export interface Checkpoint<M = Record<string, unknown>> {
  version: number;
  meta: M;
  tensors: Map<string, CheckpointTensor>;
}

/** JSON that keeps non-finite numbers (Infinity, NaN), which training state has (e.g. no best loss yet). */
function encodeJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isFinite(x) ? { $num: String(x) } : x));
}

function decodeJson(s: string): unknown {
  return JSON.parse(s, (_k, x) => (x && typeof x === 'object' && typeof x.$num === 'string' && Object.keys(x).length === 1 ? Number(x.$num) : x));
}

export function encodeCheckpoint(meta: unknown, tensors: Iterable<[string, CheckpointTensor]>): Uint8Array {
  const list = [...tensors];
  const index: Array<{ name: string; offset: number; length: number; dtype: 'f32' | 'f64' }> = [];
  let offset = 0;
  for (const [name, t] of list) {
    index.push({ name, offset, length: t.length, dtype: t instanceof Float64Array ? 'f64' : 'f32' });
    offset += Math.ceil(t.byteLength / 8) * 8;
  }
  let header = Buffer.from(encodeJson({ version: CHECKPOINT_VERSION, meta, tensors: index }), 'utf8');
  const pad = (8 - ((MAGIC.length + 4 + header.length) % 8)) % 8;
  header = Buffer.concat([header, Buffer.alloc(pad, 0x20)]);
  const out = new Uint8Array(MAGIC.length + 4 + header.length + offset);
  out.set(Buffer.from(MAGIC, 'latin1'), 0);
  new DataView(out.buffer).setUint32(MAGIC.length, header.length, true);
  out.set(header, MAGIC.length + 4);
  const base = MAGIC.length + 4 + header.length;
  list.forEach(([, t], i) => out.set(new Uint8Array(t.buffer, t.byteOffset, t.byteLength), base + index[i]!.offset));
  return out;
}

export function decodeCheckpoint<M>(bytes: Uint8Array, label = 'checkpoint'): Checkpoint<M> {
  if (bytes.length < MAGIC.length + 4 || Buffer.from(bytes.subarray(0, MAGIC.length)).toString('latin1') !== MAGIC) throw new CheckpointError(`${label} is not a tlearn checkpoint`);
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(MAGIC.length, true);
  const base = MAGIC.length + 4 + headerLen;
  if (base > bytes.length) throw new CheckpointError(`${label} is truncated`);
  let header: { version: number; meta: M; tensors: Array<{ name: string; offset: number; length: number; dtype?: 'f32' | 'f64' }> };
  try {
    header = decodeJson(Buffer.from(bytes.subarray(MAGIC.length + 4, base)).toString('utf8')) as typeof header;
  } catch {
    throw new CheckpointError(`${label} has an unreadable header`);
  }
  if (header.version > CHECKPOINT_VERSION) throw new CheckpointError(`${label} was written by a newer tlearn (checkpoint version ${header.version}); update tlearn to resume it`);
  const tensors = new Map<string, CheckpointTensor>();
  for (const t of header.tensors) {
    const start = base + t.offset;
    const copy = t.dtype === 'f64' ? new Float64Array(t.length) : new Float32Array(t.length);
    if (start + copy.byteLength > bytes.length) throw new CheckpointError(`${label} is truncated (tensor ${t.name})`);
    new Uint8Array(copy.buffer).set(bytes.subarray(start, start + copy.byteLength));
    tensors.set(t.name, copy);
  }
  return { version: header.version, meta: header.meta, tensors };
}

/** Writes a checkpoint atomically and durably. */
export async function writeCheckpoint(file: string, meta: unknown, tensors: Iterable<[string, CheckpointTensor]>): Promise<void> {
  await writeFileAtomic(file, encodeCheckpoint(meta, tensors), { durable: true });
}

/** The checkpoint in `file`, or undefined when there is none. */
export async function readCheckpoint<M = Record<string, unknown>>(file: string): Promise<Checkpoint<M> | undefined> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (e: any) {
    if (e.code === 'ENOENT') return undefined;
    throw new CheckpointError(`cannot read checkpoint ${file} (${e.code ?? e.message})`);
  }
  return decodeCheckpoint<M>(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file);
}
