/**
 * Images from a request, checked before anything is decoded: the format is sniffed from the first bytes
 * (what training reads: see data/formats.ts), the pixel count is read from the header and
 * compared with the limit (a decompression bomb is refused before a pixel is allocated), and only then is the
 * image decoded with the decode function training uses and preprocessed as the model's metadata says.
 */
import sharp from 'sharp';
import { preprocessTargetInto } from '../backbones/preprocess.js';
import type { ClassifierMetadata } from '../classifier/metadata.js';
import { decodeFailureReason, decodeForTarget, ImageDecodeError, type TargetImage } from '../image/decode.js';
import { HEAD_BYTES, sniffImageFormat, type ImageFormat } from '../image/formats.js';
import { readJpegInfo } from '../image/jpeg-header.js';
import { HttpError } from './errors.js';

export interface RequestImage {
  /** The file name a multipart part gave, or '' for a raw body. */
  name: string;
  bytes: Buffer;
}

const FORMAT_NAMES = 'JPEG, PNG, GIF, WebP, BMP, TIFF, AVIF, HEIF or SVG';

function what(img: RequestImage, index: number, count: number): string {
  if (count === 1 && !img.name) return 'the image';
  return `image ${index + 1}${img.name ? ` (${img.name})` : ''}`;
}

/** Width and height as the file's header declares them, without decoding pixels. */
export async function headerSize(bytes: Buffer, format: ImageFormat): Promise<{ width: number; height: number }> {
  if (format === 'bmp') {
    if (bytes.length < 26) throw new Error('BMP header is truncated');
    return { width: Math.abs(bytes.readInt32LE(18)), height: Math.abs(bytes.readInt32LE(22)) };
  }
  // JPEG (nearly every request): read in JavaScript, a hundredth of a sharp call; sharp explains a malformed one
  const jpeg = format === 'jpeg' ? readJpegInfo(bytes) : undefined;
  if (jpeg) return { width: jpeg.width, height: jpeg.height };
  // sharp reads only the header for metadata; limitInputPixels: false so the size itself can be reported.
  const m = await sharp(bytes, { limitInputPixels: false }).metadata();
  return { width: m.width ?? 0, height: m.pageHeight ?? m.height ?? 0 };
}

/** Refuses what is not an image or has too many pixels, from the bytes' header only. */
export async function checkImage(img: RequestImage, index: number, count: number, maxPixels: number): Promise<void> {
  const name = what(img, index, count);
  if (img.bytes.length === 0) throw new HttpError(400, 'empty image', `${name} is empty`);
  const format = sniffImageFormat(img.bytes.subarray(0, HEAD_BYTES));
  if (!format) throw new HttpError(422, 'not an image', `${name} is not a ${FORMAT_NAMES} image (its first bytes match none of them)`);
  let size: { width: number; height: number };
  try {
    size = await headerSize(img.bytes, format);
  } catch (e) {
    throw new HttpError(422, 'unreadable image', `${name} is ${decodeFailureReason(img.bytes, e)}`);
  }
  if (!(size.width > 0 && size.height > 0)) throw new HttpError(422, 'unreadable image', `${name}: the ${format.toUpperCase()} header declares no size`);
  const pixels = size.width * size.height;
  if (pixels > maxPixels) {
    throw new HttpError(413, 'image too large', `${name} is ${size.width}x${size.height} = ${pixels} pixels; the limit is ${maxPixels} (--max-pixels)`);
  }
}

/** Decodes and preprocesses one image exactly as training does (same decode function, same preprocessing). */
export async function prepareImage(img: RequestImage, index: number, count: number, meta: ClassifierMetadata): Promise<Float32Array> {
  const [h, w] = meta.inputSize;
  const o = { width: w, height: h, resize: meta.resize, kernel: meta.kernel };
  let target: TargetImage;
  try {
    target = await decodeForTarget(img.bytes, o, what(img, index, count));
  } catch (e) {
    if (e instanceof ImageDecodeError) throw new HttpError(422, 'unreadable image', `${e.path} is ${e.reason}`);
    throw e;
  }
  const x = new Float32Array(h * w * 3);
  preprocessTargetInto(target, o, meta.preprocessing, x); // as the feature pipeline does
  return x;
}

/** The images of a TF-Serving request: {"instances": [{"b64": "..."}, ...]} (or {"instances": [{"<input>": {"b64": "..."}}]}). */
export function tfServingImages(body: unknown, maxImages: number): RequestImage[] {
  const instances = (body as any)?.instances;
  const shape = 'expected {"instances": [{"b64": "<base64 image>"}, ...]}';
  if (!Array.isArray(instances)) throw new HttpError(400, 'bad request', `${shape}; the body has no "instances" array`);
  if (!instances.length) throw new HttpError(400, 'bad request', `${shape}; "instances" is empty`);
  if (instances.length > maxImages) throw new HttpError(413, 'too many images', `${instances.length} instances; at most ${maxImages} per request (--max-images)`);
  return instances.map((inst: any, i: number) => {
    let b64: unknown = inst?.b64;
    if (b64 === undefined && inst && typeof inst === 'object') {
      const values = Object.values(inst);
      if (values.length === 1) b64 = (values[0] as any)?.b64;
    }
    if (typeof b64 !== 'string') throw new HttpError(400, 'bad request', `instance ${i + 1}: ${shape}`);
    const clean = b64.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) throw new HttpError(400, 'bad request', `instance ${i + 1}: "b64" is not base64`);
    return { name: `instance ${i + 1}`, bytes: Buffer.from(clean, clean.includes('-') || clean.includes('_') ? 'base64url' : 'base64') };
  });
}
