/** Decode failures: one error type with the file and a readable reason, and the helpers every decoder shares. */
import { promises as fs } from 'node:fs';
import { HEAD_BYTES, sniffImageFormat } from './formats.js';

export class ImageDecodeError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
  }
}

/** sharp's default limit on decoded pixels (16383 x 16383), which stops decompression bombs. */
const PIXEL_LIMIT = 268402689;

/** Width and height a PNG's header declares (for the message about a too-large image). */
function pngSize(buf: Uint8Array): [number, number] | undefined {
  if (buf.length < 24 || sniffImageFormat(buf.subarray(0, 8)) !== 'png') return undefined;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return [dv.getUint32(16), dv.getUint32(20)];
}

/** A readable reason for a failed decode (libvips' message, or what the bytes show, e.g. a truncated JPEG). */
export function decodeFailureReason(buf: Uint8Array, e: unknown): string {
  const fmt = sniffImageFormat(buf.subarray(0, HEAD_BYTES));
  const raw = String((e as Error)?.message ?? e);
  if (/pixel limit/i.test(raw)) {
    const size = pngSize(buf);
    return `image too large to decode (${size ? `${size[0]}x${size[1]} pixels, ` : ''}more than the limit of ${Math.round(PIXEL_LIMIT / 1e6)} megapixels)`;
  }
  if (fmt === 'heif' && /compression|codec|decoder|heif/i.test(raw)) return `not a readable image (HEIC/HEVC is not supported by the installed sharp; convert to JPEG or AVIF)`;
  if (fmt === 'jpeg' && !(buf[buf.length - 2] === 0xff && buf[buf.length - 1] === 0xd9)) return 'not a readable image (truncated JPEG: the file ends before its end-of-image marker)';
  if (fmt === 'png' && !Buffer.from(buf.subarray(Math.max(0, buf.length - 12))).includes(Buffer.from('IEND'))) return 'not a readable image (truncated PNG: no IEND chunk)';
  const msg = raw.split('\n')[0]!.replace(/^Input (buffer|file) (contains |has )?/, '');
  return `not a readable image (${msg})`;
}

/** The file's bytes (or the given bytes); a clear ImageDecodeError when unreadable or empty. */
export async function readImageBytes(src: string | Uint8Array, label: string): Promise<Uint8Array> {
  let buf: Uint8Array;
  try {
    buf = typeof src === 'string' ? await fs.readFile(src) : src;
  } catch (e: any) {
    throw new ImageDecodeError(label, `cannot read file (${e.code ?? e.message})`);
  }
  if (buf.length === 0) throw new ImageDecodeError(label, 'empty file');
  return buf;
}

/** Runs a decode, turning any failure into an ImageDecodeError with a readable reason. */
export async function withDecodeErrors<T>(label: string, buf: Uint8Array, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof ImageDecodeError) throw e;
    throw new ImageDecodeError(label, decodeFailureReason(buf, e));
  }
}
