/**
 * Mixup (Zhang et al., 2018) and CutMix (Yun et al., 2019) on a batch of preprocessed NHWC images: each sample is
 * mixed with another of the same batch (a seeded permutation), with a share lam ~ Beta(alpha, alpha) of its own
 * label. Mixup blends whole images; CutMix pastes a box of the other image covering 1 - lam of the area (lam is
 * then the exact share left). With both, each batch uses one or the other at random.
 */
import type { Rng } from '../util/rng.js';

/** Mixed targets: sample i's target is lam[i] * its own label + (1 - lam[i]) * labelsB[i]. */
export interface MixedTargets {
  labelsB: Int32Array;
  lam: Float32Array;
}

export interface MixOptions {
  /** Beta(alpha, alpha) for mixup; 0 or absent = off. Typical 0.2. */
  mixup?: number;
  /** Beta(alpha, alpha) for CutMix; 0 or absent = off. Typical 1.0. */
  cutmix?: number;
}

export function mixingEnabled(o: MixOptions): boolean {
  return (o.mixup ?? 0) > 0 || (o.cutmix ?? 0) > 0;
}

/** Gamma(shape, 1) by Marsaglia and Tsang (boosted for shape < 1). */
export function sampleGamma(shape: number, rng: Rng): number {
  if (shape < 1) return sampleGamma(shape + 1, rng) * Math.pow(Math.max(rng.next(), 1e-300), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = rng.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.next();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(Math.max(u, 1e-300)) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

export function sampleBeta(alpha: number, beta: number, rng: Rng): number {
  const a = sampleGamma(alpha, rng);
  const b = sampleGamma(beta, rng);
  return a + b > 0 ? a / (a + b) : 0.5;
}

export interface MixedBatch {
  x: Float32Array;
  mixed: MixedTargets;
  kind: 'mixup' | 'cutmix';
  /** The box pasted by CutMix: rows [y0, y1), columns [x0, x1). */
  box?: [number, number, number, number];
}

/** Mixes a batch of n = labels.length images of size [h, w] (3 channels). The input is not modified. */
export function mixBatch(x: Float32Array, labels: Int32Array, [h, w]: [number, number], o: MixOptions, rng: Rng): MixedBatch {
  const n = labels.length;
  const px = h * w * 3;
  const useCutmix = (o.cutmix ?? 0) > 0 && (!((o.mixup ?? 0) > 0) || rng.next() < 0.5);
  const alpha = useCutmix ? o.cutmix! : o.mixup!;
  let lam = sampleBeta(alpha, alpha, rng);
  const perm = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  const labelsB = Int32Array.from(perm, (j) => labels[j]!);
  const out = new Float32Array(x.length);
  let box: MixedBatch['box'];
  if (!useCutmix) {
    for (let i = 0; i < n; i++) {
      const a = x.subarray(i * px, (i + 1) * px);
      const b = x.subarray(perm[i]! * px, (perm[i]! + 1) * px);
      for (let k = 0; k < px; k++) out[i * px + k] = lam * a[k]! + (1 - lam) * b[k]!;
    }
  } else {
    const cut = Math.sqrt(1 - lam);
    const bh = Math.round(h * cut);
    const bw = Math.round(w * cut);
    const cy = rng.int(h);
    const cx = rng.int(w);
    const y0 = Math.max(0, cy - Math.floor(bh / 2));
    const y1 = Math.min(h, y0 + bh);
    const x0 = Math.max(0, cx - Math.floor(bw / 2));
    const x1 = Math.min(w, x0 + bw);
    box = [y0, y1, x0, x1];
    out.set(x);
    for (let i = 0; i < n; i++) {
      const src = perm[i]! * px;
      for (let y = y0; y < y1; y++) out.set(x.subarray(src + (y * w + x0) * 3, src + (y * w + x1) * 3), i * px + (y * w + x0) * 3);
    }
    lam = 1 - ((y1 - y0) * (x1 - x0)) / (h * w);
  }
  return { x: out, mixed: { labelsB, lam: new Float32Array(n).fill(lam) }, kind: useCutmix ? 'cutmix' : 'mixup', box };
}
