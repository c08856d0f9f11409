/**
 * A small BMP decoder (sharp's prebuilt libvips has no BMP loader): uncompressed 1/4/8-bit paletted,
 * 16/24/32-bit and BI_BITFIELDS files, bottom-up or top-down. Returns packed RGB.
 */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3;
}

export class BmpError extends Error {}

function maskShift(mask: number): { shift: number; max: number } {
  if (!mask) return { shift: 0, max: 0 };
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) shift++;
  return { shift, max: mask >>> shift };
}

export function decodeBmp(buf: Uint8Array): RawImage {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 26 || buf[0] !== 0x42 || buf[1] !== 0x4d) throw new BmpError('not a BMP file');
  const dataOffset = dv.getUint32(10, true);
  const headerSize = dv.getUint32(14, true);
  if (headerSize < 40) throw new BmpError(`BMP core headers (${headerSize} bytes) are not supported`);
  const width = dv.getInt32(18, true);
  const rawHeight = dv.getInt32(22, true);
  const bpp = dv.getUint16(28, true);
  const compression = dv.getUint32(30, true);
  const height = Math.abs(rawHeight);
  const topDown = rawHeight < 0;
  if (width <= 0 || height === 0 || width * height > 1e8) throw new BmpError(`BMP has an invalid size ${width}x${height}`);
  if (compression !== 0 && compression !== 3) throw new BmpError(`compressed BMP (method ${compression}) is not supported`);
  let masks = bpp === 16 ? [0x7c00, 0x03e0, 0x001f] : [0xff0000, 0xff00, 0xff];
  if (compression === 3) masks = [dv.getUint32(54, true), dv.getUint32(58, true), dv.getUint32(62, true)];
  const palette: number[][] = [];
  if (bpp <= 8) {
    const colors = dv.getUint32(46, true) || 1 << bpp;
    const palOffset = 14 + headerSize;
    for (let i = 0; i < colors; i++) {
      const o = palOffset + i * 4;
      palette.push([buf[o + 2]!, buf[o + 1]!, buf[o]!]);
    }
  } else if (![16, 24, 32].includes(bpp)) {
    throw new BmpError(`BMP with ${bpp} bits per pixel is not supported`);
  }
  const stride = Math.floor((bpp * width + 31) / 32) * 4;
  if (dataOffset + stride * height > buf.length) throw new BmpError('BMP file is truncated');
  const out = new Uint8Array(width * height * 3);
  const ms = masks.map(maskShift);
  for (let y = 0; y < height; y++) {
    const row = dataOffset + (topDown ? y : height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      let r: number, g: number, b: number;
      if (bpp <= 8) {
        const bitPos = x * bpp;
        const byte = buf[row + (bitPos >> 3)]!;
        const idx = (byte >> (8 - bpp - (bitPos & 7))) & ((1 << bpp) - 1);
        const c = palette[idx] ?? [0, 0, 0];
        [r, g, b] = c as [number, number, number];
      } else if (bpp === 24) {
        const o = row + x * 3;
        [b, g, r] = [buf[o]!, buf[o + 1]!, buf[o + 2]!];
      } else {
        const v = bpp === 16 ? dv.getUint16(row + x * 2, true) : dv.getUint32(row + x * 4, true);
        [r, g, b] = ms.map(({ shift, max }, i) => (max ? Math.round((((v & masks[i]!) >>> shift) * 255) / max) : 0)) as [number, number, number];
      }
      const o = (y * width + x) * 3;
      out[o] = r;
      out[o + 1] = g;
      out[o + 2] = b;
    }
  }
  return { data: out, width, height, channels: 3 };
}

/** Encodes packed RGB as a 24-bit BMP (used by tests and fixtures). */
export function encodeBmp(data: Uint8Array, width: number, height: number): Uint8Array {
  const stride = Math.floor((24 * width + 31) / 32) * 4;
  const size = 54 + stride * height;
  const buf = new Uint8Array(size);
  const dv = new DataView(buf.buffer);
  buf[0] = 0x42;
  buf[1] = 0x4d;
  dv.setUint32(2, size, true);
  dv.setUint32(10, 54, true);
  dv.setUint32(14, 40, true);
  dv.setInt32(18, width, true);
  dv.setInt32(22, height, true);
  dv.setUint16(26, 1, true);
  dv.setUint16(28, 24, true);
  dv.setUint32(34, stride * height, true);
  for (let y = 0; y < height; y++) {
    const row = 54 + (height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      buf[row + x * 3] = data[i + 2]!;
      buf[row + x * 3 + 1] = data[i + 1]!;
      buf[row + x * 3 + 2] = data[i]!;
    }
  }
  return buf;
}
