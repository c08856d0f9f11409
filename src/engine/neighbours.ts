/**
 * The k nearest neighbours of every row of a feature matrix by cosine distance (1 − cosine similarity of the
 * L2-normalised rows), itself left out: the matrix products in blocks of rows with tfjs (WebAssembly), the k
 * smallest per row with tf.topk. Used for outliers (images far from everything) and for neighbour agreement
 * in the label-issue search.
 */
import { getTf } from '../runtime/tfjs.js';

export interface Neighbours {
  k: number;
  /** n * k row indices, nearest first. */
  index: Int32Array;
  /** n * k cosine distances (0..2), nearest first. */
  distance: Float32Array;
}

export async function nearestNeighbours(x: Float32Array, dim: number, k: number, o: { block?: number; signal?: AbortSignal } = {}): Promise<Neighbours> {
  const n = x.length / dim;
  if (!Number.isInteger(n)) throw new RangeError(`${x.length} feature values are not rows of ${dim}`);
  const kk = Math.max(0, Math.min(k, n - 1));
  const index = new Int32Array(n * kk);
  const distance = new Float32Array(n * kk);
  if (!kk) return { k: kk, index, distance };
  const tf = await getTf();
  const unit = new Float32Array(x.length);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += x[i * dim + d]! * x[i * dim + d]!;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let d = 0; d < dim; d++) unit[i * dim + d] = x[i * dim + d]! * inv;
  }
  const all = tf.tensor2d(unit, [n, dim]);
  const block = o.block ?? 512;
  try {
    for (let s = 0; s < n; s += block) {
      if (o.signal?.aborted) throw o.signal.reason ?? new Error('aborted');
      const e = Math.min(n, s + block);
      const { values, indices } = tf.tidy(() => {
        const sim = tf.matMul(all.slice([s, 0], [e - s, dim]), all, false, true);
        // leave each row itself out: its own similarity pushed below anything real
        const self = tf.oneHot(tf.range(s, e, 1, 'int32'), n).mul(-10);
        return tf.topk(sim.add(self), kk + 0, true);
      });
      const v = (await values.data()) as Float32Array;
      const ix = (await indices.data()) as Int32Array;
      values.dispose();
      indices.dispose();
      for (let j = 0; j < v.length; j++) {
        distance[s * kk + j] = Math.max(0, 1 - v[j]!);
        index[s * kk + j] = ix[j]!;
      }
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    all.dispose();
  }
  return { k: kk, index, distance };
}
