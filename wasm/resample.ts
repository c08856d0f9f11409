// AssemblyScript source of tlearn's resampling kernels (compiled by `npm run build:wasm` into
// src/data/resample-wasm.ts). The caller lays out all buffers in linear memory; every pixel is handled as
// four f32 lanes (R, G, B, unused), so each filter tap is one SIMD multiply-add.

/** Widens a row of packed RGB bytes to RGBx f32 (16 bytes per pixel). Reads one byte past the row. */
function widenRow(src: usize, width: i32, dst: usize): void {
  for (let x = 0; x < width; x++) {
    const px = v128.load32_zero(src + <usize>(x * 3));
    const wide = f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(px)));
    v128.store(dst + (<usize>x << 4), wide);
  }
}

/**
 * Horizontal pass: for `rows` source rows from `rowLo`, each output pixel x is the sum over `taps` of
 * weight[x * taps + t] * pixel(offset[x * taps + t] / 16), with `offset` the byte offsets of the source
 * pixels in a widened row; written as RGBx f32 rows of `outW` pixels to `mid`.
 */
export function hpass(src: usize, srcW: i32, rowLo: i32, rows: i32, outW: i32, taps: i32, offset: usize, weight: usize, row: usize, mid: usize): void {
  const rowBytes = <usize>(srcW * 3);
  for (let y = 0; y < rows; y++) {
    widenRow(src + <usize>(rowLo + y) * rowBytes, srcW, row);
    const m = mid + <usize>(y * outW) * 16;
    for (let x = 0; x < outW; x++) {
      const base = <usize>(x * taps) << 2;
      const ip = offset + base;
      const wp = weight + base;
      let acc = f32x4.mul(v128.load(row + <usize>load<i32>(ip)), v128.load32_splat(wp));
      for (let t: usize = 4; t < (<usize>taps << 2); t += 4) {
        acc = f32x4.add(acc, f32x4.mul(v128.load(row + <usize>load<i32>(ip + t)), v128.load32_splat(wp + t)));
      }
      v128.store(m + (<usize>x << 4), acc);
    }
  }
}

/** Vertical pass into one RGBx f32 row: acc = sum over taps of weight * the mid row at byte offset `offset`. */
function vrow(mid: usize, outW: i32, taps: i32, offset: usize, weight: usize, y: i32, acc: usize): void {
  const rowBytes = <usize>outW << 4;
  const base = <usize>(y * taps) << 2;
  const r0 = mid + <usize>load<i32>(offset + base);
  const w0 = v128.load32_splat(weight + base);
  for (let x: usize = 0; x < rowBytes; x += 16) v128.store(acc + x, f32x4.mul(v128.load(r0 + x), w0));
  for (let t = 1; t < taps; t++) {
    const r = mid + <usize>load<i32>(offset + base + (<usize>t << 2));
    const w = v128.load32_splat(weight + base + (<usize>t << 2));
    for (let x: usize = 0; x < rowBytes; x += 16) v128.store(acc + x, f32x4.add(v128.load(acc + x), f32x4.mul(v128.load(r + x), w)));
  }
}

/** Vertical pass (see vrow) to packed RGB bytes, rounded and clamped to 0..255. */
export function vpassBytes(mid: usize, outW: i32, outH: i32, taps: i32, offset: usize, weight: usize, acc: usize, out: usize): void {
  const half = f32x4.splat(0.5);
  for (let y = 0; y < outH; y++) {
    vrow(mid, outW, taps, offset, weight, y, acc);
    const o = out + <usize>(y * outW * 3);
    let x = 0;
    for (; x + 4 <= outW; x += 4) {
      const a = acc + (<usize>x << 4);
      const p0 = i32x4.trunc_sat_f32x4_s(f32x4.add(v128.load(a), half));
      const p1 = i32x4.trunc_sat_f32x4_s(f32x4.add(v128.load(a, 16), half));
      const p2 = i32x4.trunc_sat_f32x4_s(f32x4.add(v128.load(a, 32), half));
      const p3 = i32x4.trunc_sat_f32x4_s(f32x4.add(v128.load(a, 48), half));
      const bytes = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(p0, p1), i16x8.narrow_i32x4_s(p2, p3));
      const rgb = i8x16.shuffle(bytes, bytes, 0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 0, 0, 0, 0);
      v128.store64_lane(o + <usize>(x * 3), rgb, 0);
      v128.store32_lane(o + <usize>(x * 3), rgb, 2, 8);
    }
    for (; x < outW; x++) {
      const p = i32x4.trunc_sat_f32x4_s(f32x4.add(v128.load(acc + (<usize>x << 4)), half));
      const bytes = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(p, p), i16x8.narrow_i32x4_s(p, p));
      store<u8>(o + <usize>(x * 3), i8x16.extract_lane_u(bytes, 0));
      store<u8>(o + <usize>(x * 3) + 1, i8x16.extract_lane_u(bytes, 1));
      store<u8>(o + <usize>(x * 3) + 2, i8x16.extract_lane_u(bytes, 2));
    }
  }
}
