/**
 * libjpeg-turbo through @julusian/jpeg-turbo (prebuilt N-API binaries in the package): a JPEG to packed RGB
 * on libuv's thread pool, about a quarter of the CPU sharp needs for the same small image (no pipeline to
 * build). Optional: when the binding does not load on a platform, callers use sharp.
 */
import { createRequire } from 'node:module';

interface Binding {
  FORMAT_RGB: number;
  decompress(image: Buffer, options: { format: number }): Promise<{ data: Buffer; width: number; height: number }>;
}

let binding: Binding | null | undefined;

function load(): Binding | null {
  if (binding !== undefined) return binding;
  try {
    binding = createRequire(import.meta.url)('@julusian/jpeg-turbo') as Binding;
  } catch {
    binding = null;
  }
  return binding;
}

export function jpegTurboAvailable(): boolean {
  return load() !== null;
}

/** Decodes an 8-bit grayscale or colour JPEG to packed RGB (grayscale replicated); throws on anything else. */
export async function decodeJpegTurbo(buf: Uint8Array): Promise<{ data: Uint8Array; width: number; height: number }> {
  const b = load();
  if (!b) throw new Error('libjpeg-turbo binding not available');
  const input = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const r = await b.decompress(input, { format: b.FORMAT_RGB });
  return { data: new Uint8Array(r.data.buffer, r.data.byteOffset, r.width * r.height * 3), width: r.width, height: r.height };
}
