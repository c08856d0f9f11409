/**
 * Resampling of packed 8-bit RGB, following what sharp/libvips' resize does for the same request: an axis that
 * shrinks by 4x or more is first block-averaged by half its factor, then reduced with the kernel widened by the
 * remaining factor (antialiased, pixel centres aligned); when either axis enlarges, both axes then go through the
 * interpolator with libvips' enlarging convention (source x = output x / scale - 0.5). Edges are extended.
 * The filters are planned here (and kept per image size); one WebAssembly SIMD pass (wasm/resample.ts) applies
 * them in float and rounds once. With the linear kernel the result is within 2 levels of sharp's (the tests check
 * it); cubic and lanczos3 are within about 10 levels, nearest picks the same pixels except on exact ties.
 */
import type { ResizeKernel, ResizeMode } from './types.js';
import { RESAMPLE_WASM_BASE64 } from './resample-wasm.js';
import type { RgbImage } from './rgb.js';

/** An integer rectangle of the source image. */
export interface PixelRect {
  left: number;
  top: number;
  width: number;
  height: number;
}

const SUPPORT: Record<ResizeKernel, number> = { nearest: 0.5, linear: 1, cubic: 2, lanczos3: 3 };

function kernelAt(k: ResizeKernel, x: number): number {
  const a = Math.abs(x);
  switch (k) {
    case 'nearest':
      return a <= 0.5 ? 1 : 0;
    case 'linear':
      return a < 1 ? 1 - a : 0;
    case 'cubic':
      // Catmull-Rom (B = 0, C = 0.5), libvips' "cubic"
      if (a < 1) return 1.5 * a * a * a - 2.5 * a * a + 1;
      if (a < 2) return -0.5 * a * a * a + 2.5 * a * a - 4 * a + 2;
      return 0;
    case 'lanczos3': {
      if (a === 0) return 1;
      if (a >= 3) return 0;
      const p = Math.PI * a;
      return (3 * Math.sin(p) * Math.sin(p / 3)) / (p * p);
    }
  }
}

/** A sparse (output x source) filter matrix for one axis: `taps` (index, weight) pairs per output. */
interface AxisPlan {
  taps: number;
  index: Int32Array;
  weight: Float32Array;
}

/** One resampling step: output o samples the input around `centre(o)`; indices clamped to [lo, hi]. */
function step(kernel: ResizeKernel, outSize: number, lo: number, hi: number, stretch: number, centre: (o: number) => number): AxisPlan {
  if (kernel === 'nearest') {
    const index = Int32Array.from({ length: outSize }, (_, o) => Math.min(hi, Math.max(lo, Math.floor(centre(o) + 0.5))));
    return { taps: 1, index, weight: new Float32Array(outSize).fill(1) };
  }
  const support = SUPPORT[kernel] * stretch;
  const taps = Math.ceil(support * 2) + 1;
  const index = new Int32Array(outSize * taps);
  const weight = new Float32Array(outSize * taps);
  let used = 1;
  for (let o = 0; o < outSize; o++) {
    const c = centre(o);
    const first = Math.floor(c - support) + 1;
    let sum = 0;
    for (let t = 0; t < taps; t++) {
      const w = kernelAt(kernel, (first + t - c) / stretch);
      weight[o * taps + t] = w;
      sum += w;
    }
    for (let t = 0; t < taps; t++) {
      index[o * taps + t] = Math.min(hi, Math.max(lo, first + t));
      weight[o * taps + t]! /= sum || 1;
    }
    let last = taps - 1;
    while (last > 0 && weight[o * taps + last] === 0) last--;
    used = Math.max(used, last + 1);
  }
  return trimTaps({ taps, index, weight }, used);
}

/** Drops trailing taps that are zero for every output (the window above is a conservative bound). */
function trimTaps(p: AxisPlan, taps: number): AxisPlan {
  if (taps === p.taps) return p;
  const n = p.index.length / p.taps;
  const index = new Int32Array(n * taps);
  const weight = new Float32Array(n * taps);
  for (let o = 0; o < n; o++) {
    index.set(p.index.subarray(o * p.taps, o * p.taps + taps), o * taps);
    weight.set(p.weight.subarray(o * p.taps, o * p.taps + taps), o * taps);
  }
  return { taps, index, weight };
}

/** b after a (a: mid from src, b: out from mid), merged into one plan from src. */
function compose(a: AxisPlan, b: AxisPlan, outSize: number): AxisPlan {
  const rows: Array<Map<number, number>> = [];
  let taps = 1;
  for (let o = 0; o < outSize; o++) {
    const m = new Map<number, number>();
    for (let t = 0; t < b.taps; t++) {
      const wb = b.weight[o * b.taps + t]!;
      if (wb === 0) continue;
      const mid = b.index[o * b.taps + t]!;
      for (let u = 0; u < a.taps; u++) {
        const wa = a.weight[mid * a.taps + u]!;
        if (wa === 0) continue;
        const i = a.index[mid * a.taps + u]!;
        m.set(i, (m.get(i) ?? 0) + wa * wb);
      }
    }
    rows.push(m);
    taps = Math.max(taps, m.size);
  }
  const index = new Int32Array(outSize * taps);
  const weight = new Float32Array(outSize * taps);
  rows.forEach((m, o) => {
    let t = 0;
    for (const [i, w] of m) {
      index[o * taps + t] = i;
      weight[o * taps + t++] = w;
    }
    for (; t < taps; t++) index[o * taps + t] = index[o * taps]!;
  });
  return { taps, index, weight };
}

/**
 * The filter for one axis: `span` source pixels from `start` scaled by `scale` (output/source), then
 * `offset` output pixels dropped (a centred crop), `outSize` kept. `enlarging`: either axis enlarges.
 * `size`: the axis' size for centring (after a block shrink, the fractional span / block).
 */
function planAxis(kernel: ResizeKernel, start: number, span: number, scale: number, offset: number, outSize: number, enlarging: boolean, size = span): AxisPlan {
  const lo = start;
  const hi = start + span - 1;
  const interp: ResizeKernel = kernel === 'lanczos3' ? 'cubic' : kernel;
  if (scale > 1) return step(interp, outSize, lo, hi, 1, (o) => start + (o + offset) / scale - 0.5);
  if (scale === 1) {
    const id = step('nearest', outSize, lo, hi, 1, (o) => start + o + offset);
    return enlarging ? step(interp, outSize, lo, hi, 1, (o) => start + o + offset - 0.5) : id;
  }
  const reduced = Math.round(size * scale);
  // libvips first block-averages by the integer part of half the shrink, then reduces the rest
  const block = kernel === 'nearest' ? 1 : Math.floor(1 / (scale * 2));
  if (block > 1) {
    const boxed = Math.ceil(span / block);
    const box: AxisPlan = { taps: block, index: new Int32Array(boxed * block), weight: new Float32Array(boxed * block).fill(1 / block) };
    for (let o = 0; o < boxed; o++) for (let t = 0; t < block; t++) box.index[o * block + t] = Math.min(hi, start + o * block + t);
    // the rest is reduced by the remaining factor (scale * block, not outSize / boxed: the last block may be partial)
    return compose(box, planAxis(kernel, 0, boxed, scale * block, offset, outSize, enlarging, span / block), outSize);
  }
  // centres of the source span and of the (rounded) reduced axis aligned
  const reduce = step(kernel, enlarging ? reduced : outSize, lo, hi, 1 / scale, (o) => start + (o + (enlarging ? 0 : offset) + 0.5 - reduced / 2) / scale + size / 2 - 0.5);
  if (!enlarging) return reduce;
  // libvips then runs the interpolator over the reduced axis too, half a pixel shifted
  const shift = step(interp, outSize, 0, reduced - 1, 1, (o) => o + offset - 0.5);
  return compose(reduce, shift, outSize);
}

/** Output size, scale and centred-crop offset per axis for sharp's fit 'fill' (squash) or 'cover' (center-crop). */
function geometry(sw: number, sh: number, dw: number, dh: number, mode: ResizeMode) {
  if (mode === 'squash') return { sx: dw / sw, sy: dh / sh, ox: 0, oy: 0 };
  const s = Math.max(dw / sw, dh / sh);
  const rw = Math.max(dw, Math.round(sw * s));
  const rh = Math.max(dh, Math.round(sh * s));
  return { sx: s, sy: s, ox: Math.floor((rw - dw + 1) / 2), oy: Math.floor((rh - dh + 1) / 2) };
}

/** Both axes' filters, ready for the kernel. */
interface ResamplePlan {
  hTaps: number;
  /** Per output x, per tap: the byte offset of the pixel in a widened source row (i32), then the weight (f32). */
  hPairs: ArrayBuffer;
  vTaps: number;
  /** Per output y, per tap: the source row. */
  vRows: Int32Array;
  vWeights: Float32Array;
  /** Filtered rows kept at once (a power of two above vTaps). */
  ringRows: number;
}

const plans = new Map<string, ResamplePlan>();
const MAX_PLANS = 1024;

function makePlan(width: number, height: number, kernel: ResizeKernel, mode: ResizeMode, r: PixelRect): ResamplePlan {
  const g = geometry(r.width, r.height, width, height, mode);
  const enlarging = g.sx > 1 || g.sy > 1;
  const h = planAxis(kernel, r.left, r.width, g.sx, g.ox, width, enlarging);
  const v = planAxis(kernel, r.top, r.height, g.sy, g.oy, height, enlarging);
  const hPairs = new ArrayBuffer(h.index.length * 8);
  const pi = new Int32Array(hPairs);
  const pw = new Float32Array(hPairs);
  h.index.forEach((i, k) => {
    pi[2 * k] = i * 16;
    pw[2 * k + 1] = h.weight[k]!;
  });
  return { hTaps: h.taps, hPairs, vTaps: v.taps, vRows: v.index, vWeights: v.weight, ringRows: 2 ** Math.ceil(Math.log2(v.taps + 1)) };
}

/** Plans depend only on the sizes: whole-image plans are kept (a dataset has a few hundred sizes); crops are one-offs. */
function planFor(sw: number, sh: number, width: number, height: number, kernel: ResizeKernel, mode: ResizeMode, rect?: PixelRect): ResamplePlan {
  if (rect) return makePlan(width, height, kernel, mode, rect);
  const key = `${sw}x${sh}>${width}x${height}:${kernel}:${mode}`;
  let p = plans.get(key);
  if (!p) {
    p = makePlan(width, height, kernel, mode, { left: 0, top: 0, width: sw, height: sh });
    if (plans.size >= MAX_PLANS) plans.delete(plans.keys().next().value!);
    plans.set(key, p);
  }
  return p;
}

/**
 * Resizes `rect` of `src` (default: all of it) to width x height: squashed (sharp's fit 'fill') or scaled to
 * cover and centre-cropped (fit 'cover').
 */
export function resampleRgb(src: RgbImage, width: number, height: number, kernel: ResizeKernel = 'linear', mode: ResizeMode = 'squash', rect?: PixelRect): Uint8Array {
  check(src, width, height, rect);
  const k = wasm();
  const r = run(k, src, planFor(src.width, src.height, width, height, kernel, mode, rect), width, height);
  return new Uint8Array(k.memory.buffer, r.out, width * height * 3).slice();
}

/**
 * resampleRgb, then each byte mapped to float32 network input through `table` (256 values per output channel:
 * channel c of byte v at c * 256 + v; `bgr` takes output channel c from input channel 2 - c), written to `out` at
 * `offset`: the values preprocessing resampleRgb's result would give, without the byte array.
 */
export function resampleRgbInto(src: RgbImage, width: number, height: number, kernel: ResizeKernel, mode: ResizeMode, table: Float32Array, bgr: boolean, out: Float32Array, offset = 0): void {
  if (table.length !== 768) throw new Error('resampleRgbInto: the table needs 3 x 256 values');
  check(src, width, height);
  if (offset < 0 || offset + width * height * 3 > out.length) throw new RangeError(`resampleRgbInto: ${width}x${height}x3 values do not fit in the output at ${offset}`);
  const k = wasm();
  const r = run(k, src, planFor(src.width, src.height, width, height, kernel, mode), width, height, table, bgr);
  out.set(new Float32Array(k.memory.buffer, r.out, width * height * 3), offset);
}

function check(src: RgbImage, width: number, height: number, rect?: PixelRect): void {
  const whole = (n: number) => Number.isInteger(n) && n >= 1;
  if (!whole(src.width) || !whole(src.height) || src.data.length < src.width * src.height * 3) throw new RangeError(`resample: a ${src.width}x${src.height} RGB image needs ${src.width * src.height * 3} bytes, got ${src.data.length}`);
  if (!whole(width) || !whole(height)) throw new RangeError(`resample: bad output size ${width}x${height}`);
  if (rect && !(whole(rect.width) && whole(rect.height) && Number.isInteger(rect.left) && Number.isInteger(rect.top) && rect.left >= 0 && rect.top >= 0 && rect.left + rect.width <= src.width && rect.top + rect.height <= src.height)) {
    throw new RangeError(`resample: rectangle ${JSON.stringify(rect)} is not inside the ${src.width}x${src.height} image`);
  }
}

/** The compiled kernel and a linear memory that grows to the largest image seen. */
interface Kernels {
  memory: WebAssembly.Memory;
  resample(
    src: number,
    srcW: number,
    outW: number,
    outH: number,
    hTaps: number,
    hPairs: number,
    vTaps: number,
    vRows: number,
    vWeights: number,
    ring: number,
    ringRows: number,
    rowIds: number,
    row: number,
    acc: number,
    out: number,
    table: number,
    swap: number,
  ): void;
  transform(src: number, S: number, out: number, w: number, h: number, cos: number, sin: number, flip: number, b: number, k: number, sat: number): void;
}

let kernels: Kernels | undefined;

function wasm(): Kernels {
  kernels ??= new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(RESAMPLE_WASM_BASE64, 'base64'))).exports as unknown as Kernels;
  return kernels;
}

/** Lays out consecutive 16-byte-aligned regions of `bytes` each (plus 16 bytes of slack), from `start`. */
function layout(start: number, ...bytes: number[]): number[] {
  const at: number[] = [];
  let p = start;
  for (const b of bytes) {
    at.push(p);
    p += Math.ceil(b / 16) * 16 + 16;
  }
  at.push(p);
  return at;
}

/** Runs the kernel on `src` with plan `p`; the result (bytes, or float32 with `consts`) is at `out` in wasm memory. */
function run(k: Kernels, src: RgbImage, p: ResamplePlan, width: number, height: number, table?: Float32Array, bgr = false): { out: number } {
  const srcBytes = src.width * src.height * 3;
  const [pSrc, pHp, pVr, pVw, pRing, pIds, pRow, pAcc, pK, pOut, end] = layout(
    1024,
    srcBytes,
    p.hPairs.byteLength,
    p.vRows.byteLength,
    p.vWeights.byteLength,
    p.ringRows * width * 16,
    p.ringRows * 4,
    src.width * 16,
    width * 16,
    table ? 3072 : 0,
    width * height * (table ? 12 : 3),
  ) as [number, number, number, number, number, number, number, number, number, number, number];
  const need = end - k.memory.buffer.byteLength;
  if (need > 0) k.memory.grow(Math.ceil(need / 65536));
  const buf = k.memory.buffer;
  new Uint8Array(buf, pSrc, srcBytes).set(src.data.subarray(0, srcBytes));
  new Uint8Array(buf, pHp, p.hPairs.byteLength).set(new Uint8Array(p.hPairs));
  new Int32Array(buf, pVr, p.vRows.length).set(p.vRows);
  new Float32Array(buf, pVw, p.vWeights.length).set(p.vWeights);
  if (table) new Float32Array(buf, pK, 768).set(table);
  k.resample(pSrc, src.width, width, height, p.hTaps, pHp, p.vTaps, pVr, pVw, pRing, p.ringRows, pIds, pRow, pAcc, pOut, table ? pK : 0, bgr ? 1 : 0);
  return { out: pOut };
}

/**
 * The WebAssembly pass of transformRgb (rotation, flip, colour jitter of an S x S image into width x height): the
 * same arithmetic as the JavaScript reference in transform-rgb.ts, in the same order, so the same bytes.
 */
export function transformRgbWasm(src: Uint8Array, S: number, out: Uint8Array, width: number, height: number, cos: number, sin: number, flip: boolean, brightness: number, contrast: number, saturation: number): void {
  if (src.length < S * S * 3 || out.length < width * height * 3) throw new RangeError(`transformRgb: needs ${S}x${S} RGB in and ${width}x${height} RGB out`);
  const k = wasm();
  const [pSrc, pOut, end] = layout(1024, S * S * 3, width * height * 3) as [number, number, number];
  const need = end - k.memory.buffer.byteLength;
  if (need > 0) k.memory.grow(Math.ceil(need / 65536));
  new Uint8Array(k.memory.buffer, pSrc, S * S * 3).set(src.subarray(0, S * S * 3));
  k.transform(pSrc, S, pOut, width, height, cos, sin, flip ? 1 : 0, brightness, contrast, saturation);
  out.set(new Uint8Array(k.memory.buffer, pOut, width * height * 3));
}
