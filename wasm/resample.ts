// AssemblyScript source of tlearn's resampling kernel (compiled by `npm run build:wasm` into
// src/data/resample-wasm.ts). The caller lays out all buffers in linear memory. Every pixel is handled as four
// f32 lanes (R, G, B, unused), so each filter tap is one SIMD multiply-add. Output rows are made one at a time
// from a small ring of horizontally filtered source rows, so the working set stays in the CPU's caches.

/** Widens a row of packed RGB bytes to RGBx f32 (16 bytes per pixel). Reads one byte past the row. */
function widenRow(src: usize, width: i32, dst: usize): void {
  for (let x = 0; x < width; x++) {
    const px = v128.load32_zero(src + <usize>(x * 3));
    const wide = f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(px)));
    v128.store(dst + (<usize>x << 4), wide);
  }
}

/** One horizontally filtered row: each output pixel sums its taps' (byte offset in `row`, weight) pairs. */
function filterRow(row: usize, pairs: usize, pairsEnd: usize, tapBytes: usize, dst: usize): void {
  let m = dst;
  for (let p = pairs; p < pairsEnd; ) {
    const end = p + tapBytes;
    let acc = f32x4.mul(v128.load(row + <usize>load<i32>(p)), v128.load32_splat(p, 4));
    p += 8;
    while (p < end) {
      acc = f32x4.add(acc, f32x4.mul(v128.load(row + <usize>load<i32>(p)), v128.load32_splat(p, 4)));
      p += 8;
    }
    v128.store(m, acc);
    m += 16;
  }
}

/** Rounds an RGBx f32 row to packed RGB bytes, clamped to 0..255. Writes one byte past the row. */
function packRow(acc: usize, outW: i32, out: usize): void {
  const half = f32x4.splat(0.5);
  let x = 0;
  for (; x + 4 <= outW; x += 4) {
    const a = acc + (<usize>x << 4);
    const p0 = i32x4.trunc_sat_f32x4_s(f32x4.add(v128.load(a), half));
    const p1 = i32x4.trunc_sat_f32x4_s(f32x4.add(v128.load(a, 16), half));
    const p2 = i32x4.trunc_sat_f32x4_s(f32x4.add(v128.load(a, 32), half));
    const p3 = i32x4.trunc_sat_f32x4_s(f32x4.add(v128.load(a, 48), half));
    const bytes = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(p0, p1), i16x8.narrow_i32x4_s(p2, p3));
    const rgb = i8x16.shuffle(bytes, bytes, 0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 0, 0, 0, 0);
    v128.store64_lane(out + <usize>(x * 3), rgb, 0);
    v128.store32_lane(out + <usize>(x * 3), rgb, 2, 8);
  }
  for (; x < outW; x++) {
    const p = i32x4.trunc_sat_f32x4_s(f32x4.add(v128.load(acc + (<usize>x << 4)), half));
    const bytes = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(p, p), i16x8.narrow_i32x4_s(p, p));
    v128.store32_lane(out + <usize>(x * 3), bytes, 0);
  }
}

/**
 * Rounds an RGBx f32 row like packRow, then writes float32 network input, 3 values per pixel, looked up in
 * `table`: 256 f32 per output channel (output channel c of byte v at c * 256 + v); `swap` takes output channel c
 * from input channel 2 - c (BGR).
 */
function packRowFloat(acc: usize, outW: i32, out: usize, table: usize, swap: bool): void {
  const half = f32x4.splat(0.5);
  const zero = i32x4.splat(0);
  const top = i32x4.splat(255);
  for (let x = 0; x < outW; x++) {
    let q = i32x4.min_s(i32x4.max_s(i32x4.trunc_sat_f32x4_s(f32x4.add(v128.load(acc + (<usize>x << 4)), half)), zero), top);
    if (swap) q = i32x4.shuffle(q, q, 2, 1, 0, 3);
    const o = out + <usize>(x * 12);
    store<f32>(o, load<f32>(table + (<usize>i32x4.extract_lane(q, 0) << 2)));
    store<f32>(o, load<f32>(table + 1024 + (<usize>i32x4.extract_lane(q, 1) << 2)), 4);
    store<f32>(o, load<f32>(table + 2048 + (<usize>i32x4.extract_lane(q, 2) << 2)), 8);
  }
}

/**
 * Resamples packed RGB `src` (srcW pixels per row) to outW x outH at `out`: packed RGB bytes, or (with `table`
 * non-zero, see packRowFloat) float32 network input.
 * Horizontal filter: per output x, `hTaps` (i32 byte offset of a pixel in a widened row, f32 weight) pairs at
 * `hPairs`. Vertical filter: per output y, `vTaps` source row numbers (i32) at `vRows` and weights (f32) at
 * `vWeights`; rows must not decrease with y. `ring` holds `ringRows` (a power of two, at least vTaps + 1)
 * filtered rows, `rowIds` their source row numbers (ringRows i32), `row` one widened source row, `acc` one
 * output row of RGBx f32.
 */
export function resample(
  src: usize,
  srcW: i32,
  outW: i32,
  outH: i32,
  hTaps: i32,
  hPairs: usize,
  vTaps: i32,
  vRows: usize,
  vWeights: usize,
  ring: usize,
  ringRows: i32,
  rowIds: usize,
  row: usize,
  acc: usize,
  out: usize,
  table: usize,
  swap: bool,
): void {
  const srcRowBytes = <usize>(srcW * 3);
  const ringRowBytes = <usize>outW << 4;
  const pairsEnd = hPairs + (<usize>(outW * hTaps) << 3);
  const tapBytes = <usize>hTaps << 3;
  const mask = ringRows - 1;
  for (let i = 0; i < ringRows; i++) store<i32>(rowIds + (<usize>i << 2), -1);
  for (let y = 0; y < outH; y++) {
    const base = <usize>(y * vTaps) << 2;
    for (let t = 0; t < vTaps; t++) {
      const r = load<i32>(vRows + base + (<usize>t << 2));
      const slot = <usize>(r & mask);
      const dst = ring + slot * ringRowBytes;
      if (load<i32>(rowIds + (slot << 2)) != r) {
        widenRow(src + <usize>r * srcRowBytes, srcW, row);
        filterRow(row, hPairs, pairsEnd, tapBytes, dst);
        store<i32>(rowIds + (slot << 2), r);
      }
      const w = v128.load32_splat(vWeights + base + (<usize>t << 2));
      if (t == 0) {
        for (let x: usize = 0; x < ringRowBytes; x += 16) v128.store(acc + x, f32x4.mul(v128.load(dst + x), w));
      } else {
        for (let x: usize = 0; x < ringRowBytes; x += 16) v128.store(acc + x, f32x4.add(v128.load(acc + x), f32x4.mul(v128.load(dst + x), w)));
      }
    }
    if (table) packRowFloat(acc, outW, out + <usize>(y * outW * 12), table, swap);
    else packRow(acc, outW, out + <usize>(y * outW * 3));
  }
}

/**
 * Rotation about the centre (bilinear), horizontal flip and colour jitter of an S x S packed RGB image `src` into
 * w x h packed RGB at `out`, in f64 with the operations in the same order as src/image/transform-rgb.ts' reference
 * (so the bytes are the same): output pixel (x, y) samples the source at cos*u + sin*v + sc, -sin*u + cos*v + sc.
 */
export function transform(src: usize, S: i32, out: usize, w: i32, h: i32, cos: f64, sin: f64, flip: bool, b: f64, k: f64, sat: f64): void {
  const cx = <f64>(w - 1) / 2;
  const cy = <f64>(h - 1) / 2;
  const sc = <f64>(S - 1) / 2;
  const last = <f64>(S - 1);
  const n = <usize>S * <usize>S * 3;
  let mean: f64 = 0;
  for (let i: usize = 0; i < n; i += 3) mean += 0.299 * <f64>load<u8>(src + i) + 0.587 * <f64>load<u8>(src + i + 1) + 0.114 * <f64>load<u8>(src + i + 2);
  mean = (mean / <f64>(n / 3)) * b;
  const rowBytes = <usize>S * 3;
  let o = out;
  for (let y = 0; y < h; y++) {
    const v = <f64>y - cy;
    for (let x = 0; x < w; x++) {
      const u = flip ? cx - <f64>x : <f64>x - cx;
      let sx = cos * u + sin * v + sc;
      let sy = -sin * u + cos * v + sc;
      sx = sx < 0 ? 0 : sx > last ? last : sx;
      sy = sy < 0 ? 0 : sy > last ? last : sy;
      const x0 = <i32>sx;
      const y0 = <i32>sy;
      const x1 = x0 + 1 < S ? x0 + 1 : x0;
      const y1 = y0 + 1 < S ? y0 + 1 : y0;
      const fx = sx - <f64>x0;
      const fy = sy - <f64>y0;
      const w00 = (1 - fx) * (1 - fy);
      const w01 = fx * (1 - fy);
      const w10 = (1 - fx) * fy;
      const w11 = fx * fy;
      const p00 = src + <usize>y0 * rowBytes + <usize>x0 * 3;
      const p01 = src + <usize>y0 * rowBytes + <usize>x1 * 3;
      const p10 = src + <usize>y1 * rowBytes + <usize>x0 * 3;
      const p11 = src + <usize>y1 * rowBytes + <usize>x1 * 3;
      const r = (<f64>load<u8>(p00) * w00 + <f64>load<u8>(p01) * w01 + <f64>load<u8>(p10) * w10 + <f64>load<u8>(p11) * w11) * b;
      const g = (<f64>load<u8>(p00, 1) * w00 + <f64>load<u8>(p01, 1) * w01 + <f64>load<u8>(p10, 1) * w10 + <f64>load<u8>(p11, 1) * w11) * b;
      const bl = (<f64>load<u8>(p00, 2) * w00 + <f64>load<u8>(p01, 2) * w01 + <f64>load<u8>(p10, 2) * w10 + <f64>load<u8>(p11, 2) * w11) * b;
      const gray = 0.299 * r + 0.587 * g + 0.114 * bl;
      const rr = (gray + (r - gray) * sat - mean) * k + mean;
      const gg = (gray + (g - gray) * sat - mean) * k + mean;
      const bb = (gray + (bl - gray) * sat - mean) * k + mean;
      store<u8>(o, rr < 0 ? 0 : rr > 255 ? 255 : <u8>(<i32>(rr + 0.5)));
      store<u8>(o, gg < 0 ? 0 : gg > 255 ? 255 : <u8>(<i32>(gg + 0.5)), 1);
      store<u8>(o, bb < 0 ? 0 : bb > 255 ? 255 : <u8>(<i32>(bb + 0.5)), 2);
      o += 3;
    }
  }
}
