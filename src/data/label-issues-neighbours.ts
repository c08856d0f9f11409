/**
 * What the nearest neighbours in feature space say, pure math on their indices and distances (as computed by
 * engine/neighbours.ts): outliers (images far from everything, their mean distance to the k nearest scored
 * against the dataset's own distribution of that distance) and neighbour votes (each image's class
 * probabilities from the labels of its neighbours, a second opinion beside the out-of-fold heads).
 */

export interface OutlierScores {
  /** Mean distance of each image to its k nearest neighbours. */
  meanDistance: Float64Array;
  /** Outlier score in (0, 1]: exp(−meanDistance / median meanDistance); lower is farther out. */
  score: Float64Array;
  /** Robust z-score of the mean distance: (d − median) / (1.4826 · MAD). */
  z: Float64Array;
  /** Rows flagged as outliers (z above `zLimit`), farthest first. */
  outliers: number[];
  median: number;
  zLimit: number;
}

function medianOf(v: ArrayLike<number>): number {
  const s = Float64Array.from(v).sort();
  if (!s.length) return 0;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Scores every image by its mean distance to its k nearest neighbours, against the dataset's own distribution. */
export function outlierScores(distance: ArrayLike<number>, n: number, k: number, o: { zLimit?: number } = {}): OutlierScores {
  const zLimit = o.zLimit ?? 5;
  const meanDistance = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < k; j++) s += distance[i * k + j]!;
    meanDistance[i] = k ? s / k : 0;
  }
  const median = medianOf(meanDistance);
  const mad = medianOf(Array.from(meanDistance, (d) => Math.abs(d - median))) * 1.4826;
  const z = Float64Array.from(meanDistance, (d) => (mad > 0 ? (d - median) / mad : 0));
  const score = Float64Array.from(meanDistance, (d) => (median > 0 ? Math.exp(-d / median) : 1));
  const outliers: number[] = [];
  // at least 5 images: with fewer, nothing is far from "the rest"
  if (n >= 5 && k > 0) for (let i = 0; i < n; i++) if (z[i]! > zLimit) outliers.push(i);
  outliers.sort((a, b) => meanDistance[b]! - meanDistance[a]!);
  return { meanDistance, score, z, outliers, median, zLimit };
}

/**
 * Class probabilities from the neighbours' labels: each of the k neighbours votes for its label with equal
 * weight, plus `prior` votes spread over all classes (so no class is impossible).
 */
export function neighbourProbabilities(index: ArrayLike<number>, n: number, k: number, labels: ArrayLike<number>, classes: number, prior = 0.5): Float32Array {
  const p = new Float32Array(n * classes);
  for (let i = 0; i < n; i++) {
    const row = i * classes;
    for (let c = 0; c < classes; c++) p[row + c] = prior / classes;
    for (let j = 0; j < k; j++) p[row + labels[index[i * k + j]!]!]! += 1;
    const total = prior + k;
    for (let c = 0; c < classes; c++) p[row + c]! /= total;
  }
  return p;
}
