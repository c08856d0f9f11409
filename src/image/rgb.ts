/** Packed 8-bit RGB images in memory and the exact (lossless) operations on them: EXIF orientation, mirroring. */

export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/**
 * Applies EXIF orientation 1..8 (the transform that shows the image upright), as libvips' autorot does:
 * 2 mirror, 3 rotate 180°, 4 flip, 5 transpose, 6 rotate 90° clockwise, 7 transverse, 8 rotate 90° anticlockwise.
 */
export function orientRgb(img: RgbImage, orientation: number): RgbImage {
  if (orientation <= 1 || orientation > 8) return img;
  const { width: w, height: h, data: s } = img;
  const swap = orientation >= 5;
  const ow = swap ? h : w;
  const oh = swap ? w : h;
  const out = new Uint8Array(ow * oh * 3);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      // the source pixel shown at (x, y)
      let sx: number;
      let sy: number;
      switch (orientation) {
        case 2: sx = w - 1 - x; sy = y; break;
        case 3: sx = w - 1 - x; sy = h - 1 - y; break;
        case 4: sx = x; sy = h - 1 - y; break;
        case 5: sx = y; sy = x; break;
        case 6: sx = y; sy = h - 1 - x; break;
        case 7: sx = w - 1 - y; sy = h - 1 - x; break;
        default: sx = w - 1 - y; sy = x; break;
      }
      const si = (sy * w + sx) * 3;
      const o = (y * ow + x) * 3;
      out[o] = s[si]!;
      out[o + 1] = s[si + 1]!;
      out[o + 2] = s[si + 2]!;
    }
  }
  return { data: out, width: ow, height: oh };
}

/** Mirrors packed RGB left to right, in place. */
export function flipRgbInPlace(data: Uint8Array, width: number, height: number): Uint8Array {
  for (let y = 0; y < height; y++) {
    let a = y * width * 3;
    let b = a + (width - 1) * 3;
    for (; a < b; a += 3, b -= 3) {
      for (let c = 0; c < 3; c++) {
        const t = data[a + c]!;
        data[a + c] = data[b + c]!;
        data[b + c] = t;
      }
    }
  }
  return data;
}
