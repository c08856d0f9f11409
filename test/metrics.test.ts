import { describe, expect, it } from 'vitest';
import { computeMetrics } from '../src/evaluate/metrics.js';

function probsFromPreds(preds: number[], K: number, conf = 0.9): Float32Array {
  const p = new Float32Array(preds.length * K);
  preds.forEach((c, i) => {
    for (let k = 0; k < K; k++) p[i * K + k] = k === c ? conf : (1 - conf) / (K - 1);
  });
  return p;
}

describe('computeMetrics', () => {
  // 3 classes; class 2 ("c") is never predicted; labels: a a a b b c
  const names = ['a', 'b', 'c'];
  const labels = [0, 0, 0, 1, 1, 2];
  const preds = [0, 0, 1, 1, 0, 0];
  const m = computeMetrics(probsFromPreds(preds, 3), labels, names);

  it('accuracy, confusion matrix and per-class precision/recall/F1 by hand', () => {
    expect(m.accuracy).toBeCloseTo(3 / 6);
    expect(m.confusion).toEqual([
      [2, 1, 0],
      [1, 1, 0],
      [1, 0, 0],
    ]);
    const [a, b, c] = m.perClass;
    expect(a).toMatchObject({ precision: 2 / 4, recall: 2 / 3, support: 3, predicted: 4 });
    expect(a!.f1).toBeCloseTo((2 * 0.5 * (2 / 3)) / (0.5 + 2 / 3));
    expect(b).toMatchObject({ precision: 1 / 2, recall: 1 / 2, f1: 1 / 2, support: 2 });
    // a class with no predictions: precision 0 (and F1 0), not NaN
    expect(c).toMatchObject({ precision: 0, recall: 0, f1: 0, support: 1, predicted: 0 });
    expect(m.balancedAccuracy).toBeCloseTo((2 / 3 + 1 / 2 + 0) / 3);
    expect(m.macro.precision).toBeCloseTo((0.5 + 0.5 + 0) / 3);
    expect(m.weighted.recall).toBeCloseTo((3 * (2 / 3) + 2 * 0.5 + 0) / 6);
  });

  it('log-loss, top-k, most-confused pairs and calibration', () => {
    const expectedLoss = -(3 * Math.log(0.9) + 3 * Math.log(0.05)) / 6;
    expect(m.loss).toBeCloseTo(expectedLoss, 5);
    expect(m.topK).toBe(3);
    expect(m.top5).toBe(1);
    expect(m.mostConfused.slice(0, 3)).toEqual([
      { true: 'a', predicted: 'b', count: 1 },
      { true: 'b', predicted: 'a', count: 1 },
      { true: 'c', predicted: 'a', count: 1 },
    ]);
    // every prediction has confidence 0.9 → one bin with accuracy 0.5 → ECE = 0.4
    expect(m.ece).toBeCloseTo(0.4, 5);
    const used = m.reliability.filter((b) => b.count > 0);
    expect(used).toHaveLength(1);
    expect(used[0]).toMatchObject({ count: 6, accuracy: 0.5 });
    expect(used[0]!.confidence).toBeCloseTo(0.9, 5);
  });

  it('a class with no true samples is left out of balanced accuracy but counted where predicted', () => {
    // classes x, y, z; z has no true samples but is predicted once
    const r = computeMetrics(probsFromPreds([0, 2, 1], 3), [0, 0, 1], ['x', 'y', 'z']);
    const z = r.perClass[2]!;
    expect(z).toMatchObject({ support: 0, predicted: 1, precision: 0, recall: 0, f1: 0 });
    expect(r.balancedAccuracy).toBeCloseTo((1 / 2 + 1) / 2);
    expect(r.macro.recall).toBeCloseTo((1 / 2 + 1 + 0) / 3);
  });

  it('top-k with k below the number of classes', () => {
    const p = new Float32Array([0.5, 0.3, 0.2, 0.1, 0.2, 0.7]);
    const r = computeMetrics(p, [1, 0], ['a', 'b', 'c'], { topK: 2 });
    expect(r.topK).toBe(2);
    expect(r.top5).toBe(0.5);
  });

  it('rejects labels outside the class range and mismatched sizes', () => {
    expect(() => computeMetrics(new Float32Array(6), [0, 3], ['a', 'b', 'c'])).toThrow(/label 3 of sample 1/);
    expect(() => computeMetrics(new Float32Array(5), [0, 1], ['a', 'b', 'c'])).toThrow(/5 probabilities for 2 samples of 3 classes/);
  });
});
