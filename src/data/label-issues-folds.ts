/**
 * Folds for out-of-fold predictions: stratified and seeded, every class spread over the folds round-robin from
 * a shuffled order (a class with fewer images than folds lands in fewer folds, one image each, so every fold's
 * training part still holds the class's other images).
 */
import { Rng } from '../util/rng.js';

/** fold[i] in 0..folds-1 for every row, stratified by label and seeded. */
export function stratifiedFolds(labels: ArrayLike<number>, folds: number, seed = 42): Int32Array {
  if (!(Number.isInteger(folds) && folds >= 2)) throw new RangeError(`folds must be an integer >= 2, got ${folds}`);
  const rng = new Rng(seed);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    const list = byClass.get(l) ?? [];
    list.push(i);
    byClass.set(l, list);
  }
  const fold = new Int32Array(labels.length);
  // the next fold to fill continues from class to class, so the folds end up the same size within one image
  let next = 0;
  for (const key of [...byClass.keys()].sort((a, b) => a - b)) {
    for (const i of rng.shuffle(byClass.get(key)!)) {
      fold[i] = next;
      next = (next + 1) % folds;
    }
  }
  return fold;
}
