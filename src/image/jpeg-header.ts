/**
 * What a JPEG's markers say before any pixel is decoded: size, number of colour components, EXIF orientation
 * and whether it carries an ICC profile. Decides whether the fast libjpeg-turbo path can decode it exactly
 * as sharp would (8-bit, 1 or 3 components, no colour profile to apply).
 */
export interface JpegInfo {
  width: number;
  height: number;
  /** 1 (grayscale), 3 (YCbCr or RGB) or 4 (CMYK/YCCK). */
  components: number;
  /** Bits per sample (8 for nearly every JPEG; 12 exists). */
  precision: number;
  /** EXIF orientation 1..8 (1 when absent). */
  orientation: number;
  hasIcc: boolean;
}

function exifOrientation(buf: Uint8Array, start: number, end: number): number {
  // "Exif\0\0" then a TIFF header
  const t = start + 6;
  if (end - t < 8) return 1;
  const le = buf[t] === 0x49 && buf[t + 1] === 0x49;
  if (!le && !(buf[t] === 0x4d && buf[t + 1] === 0x4d)) return 1;
  const u16 = (p: number) => (le ? buf[p]! | (buf[p + 1]! << 8) : (buf[p]! << 8) | buf[p + 1]!);
  const u32 = (p: number) => (le ? (buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16)) + buf[p + 3]! * 2 ** 24 : buf[p]! * 2 ** 24 + ((buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!));
  const ifd = t + u32(t + 4);
  if (ifd + 2 > end) return 1;
  const n = u16(ifd);
  for (let i = 0; i < n; i++) {
    const e = ifd + 2 + i * 12;
    if (e + 12 > end) return 1;
    if (u16(e) === 0x0112) {
      const v = u16(e + 8);
      return v >= 1 && v <= 8 ? v : 1;
    }
  }
  return 1;
}

const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

/** Parses the markers up to the first scan; undefined when the bytes are not a well-formed JPEG header. */
export function readJpegInfo(buf: Uint8Array): JpegInfo | undefined {
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) return undefined;
  let p = 2;
  let orientation = 1;
  let hasIcc = false;
  while (p + 4 <= buf.length) {
    if (buf[p] !== 0xff) return undefined;
    const marker = buf[p + 1]!;
    if (marker === 0xff) {
      p++;
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      p += 2;
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) return undefined;
    const len = (buf[p + 2]! << 8) | buf[p + 3]!;
    const start = p + 4;
    const end = p + 2 + len;
    if (len < 2 || end > buf.length) return undefined;
    if (marker === 0xe1 && len >= 16 && buf[start] === 0x45 && buf[start + 1] === 0x78 && buf[start + 2] === 0x69 && buf[start + 3] === 0x66 && buf[start + 4] === 0 && buf[start + 5] === 0) {
      orientation = exifOrientation(buf, start, end);
    } else if (marker === 0xe2 && len >= 14 && String.fromCharCode(...buf.subarray(start, start + 11)) === 'ICC_PROFILE') {
      hasIcc = true;
    } else if (isSof(marker)) {
      if (len < 8) return undefined;
      const precision = buf[start]!;
      const height = (buf[start + 1]! << 8) | buf[start + 2]!;
      const width = (buf[start + 3]! << 8) | buf[start + 4]!;
      const components = buf[start + 5]!;
      if (!width || !height) return undefined;
      return { width, height, components, precision, orientation, hasIcc };
    }
    p = end;
  }
  return undefined;
}
