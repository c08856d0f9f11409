import { describe, expect, it } from 'vitest';
import { findLabelIssues, LabelIssuesError } from '../src/data/label-issues.js';
import { stratifiedFolds } from '../src/data/label-issues-folds.js';
import { neighbourProbabilities, outlierScores } from '../src/data/label-issues-neighbours.js';
import { labelIssuesFromFeatures } from '../src/engine/label-issues-features.js';
import { nearestNeighbours } from '../src/engine/neighbours.js';
import { Rng } from '../src/util/rng.js';

/**
 * Synthetic out-of-sample probabilities: n images of k classes; a model that puts most mass on the true class,
 * less on hard images (a share of them mistaken for a neighbouring class); a share of the labels moved to a
 * random other class (uniform noise). Returns the probabilities, the given labels and which were moved.
 */
function synthetic(n: number, k: number, noise: number, seed = 1, hardShare = 0.15) {
  const rng = new Rng(seed);
  const truth = Int32Array.from({ length: n }, (_, i) => i % k);
  const labels = Int32Array.from(truth);
  const moved = new Set<number>();
  for (const i of rng.shuffle(Array.from({ length: n }, (_, i) => i)).slice(0, Math.round(noise * n))) {
    let j = rng.int(k - 1);
    if (j >= truth[i]!) j++;
    labels[i] = j;
    moved.add(i);
  }
  const p = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    const logits = Array.from({ length: k }, () => rng.normal());
    const hard = rng.next() < hardShare;
    logits[truth[i]!]! += hard ? 1.5 : 6;
    // hard images lean towards the next class (a confusable pair)
    if (hard) logits[(truth[i]! + 1) % k]! += 1.5;
    const m = Math.max(...logits);
    const e = logits.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    e.forEach((v, j) => (p[i * k + j] = v / s));
  }
  return { p, labels, truth, moved };
}

function precisionRecall(flagged: number[], moved: Set<number>) {
  const tp = flagged.filter((i) => moved.has(i)).length;
  return { precision: tp / flagged.length, recall: tp / moved.size };
}

describe('findLabelIssues (confident learning)', () => {
  it('finds uniform label noise in synthetic probabilities with high precision and recall', () => {
    const { p, labels, moved } = synthetic(2000, 10, 0.1);
    const r = findLabelIssues({ probabilities: p, labels, classes: 10 });
    const pr = precisionRecall(
      r.issues.map((i) => i.index),
      moved,
    );
    expect(pr.precision).toBeGreaterThan(0.85);
    expect(pr.recall).toBeGreaterThan(0.85);
    // the estimate of the count is near the 200 moved
    expect(r.estimatedIssues).toBeGreaterThan(160);
    expect(r.estimatedIssues).toBeLessThan(260);
    // ranked by self-confidence, lowest first, with the suggested label the most likely other class
    for (let j = 1; j < r.issues.length; j++) expect(r.issues[j]!.score).toBeGreaterThanOrEqual(r.issues[j - 1]!.score);
    const first = r.issues[0]!;
    expect(first.score).toBeCloseTo(p[first.index * 10 + first.given]!, 12);
    // the joint sums to 1; the noise matrix columns P(given | true) sum to 1
    expect(r.joint.flat().reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    for (let t = 0; t < 10; t++) expect(r.noiseMatrix.reduce((a, row) => a + row[t]!, 0)).toBeCloseTo(1, 9);
    // health: every class about 10% wrong
    expect(r.classes.reduce((a, c) => a + c.images, 0)).toBe(2000);
    for (const c of r.classes) {
      expect(c.wrongShare).toBeGreaterThan(0.03);
      expect(c.wrongShare).toBeLessThan(0.2);
    }
  });

  it('the three filters and the normalized margin; rows as arrays give the same result', () => {
    const { p, labels, moved } = synthetic(1000, 5, 0.05, 3);
    for (const filterBy of ['prune_by_noise_rate', 'low_self_confidence', 'low_normalized_margin'] as const) {
      const r = findLabelIssues({ probabilities: p, labels, classes: 5, filterBy, rankBy: 'normalized_margin' });
      const pr = precisionRecall(
        r.issues.map((i) => i.index),
        moved,
      );
      expect(pr.precision, filterBy).toBeGreaterThan(0.75);
      expect(pr.recall, filterBy).toBeGreaterThan(0.75);
      for (const is of r.issues) expect(is.score).toBeGreaterThanOrEqual(0);
    }
    const rows = Array.from({ length: 1000 }, (_, i) => Array.from(p.subarray(i * 5, i * 5 + 5)));
    expect(findLabelIssues({ probabilities: rows, labels: Array.from(labels) }).issues).toEqual(findLabelIssues({ probabilities: p, labels, classes: 5 }).issues);
  });

  it('finds swapped class pairs (asymmetric noise) and names them in the health summary', () => {
    const rng = new Rng(5);
    const k = 4;
    const n = 800;
    const labels = new Int32Array(n);
    const p = new Float64Array(n * k);
    const moved = new Set<number>();
    for (let i = 0; i < n; i++) {
      const t = i % k;
      labels[i] = t;
      // 15% of class 0 filed as class 1
      if (t === 0 && rng.next() < 0.15) {
        labels[i] = 1;
        moved.add(i);
      }
      for (let j = 0; j < k; j++) p[i * k + j] = 0.02;
      p[i * k + t] = 0.94;
    }
    const r = findLabelIssues({ probabilities: p, labels, classNames: ['cat', 'lynx', 'dog', 'fox'] });
    expect(new Set(r.issues.map((i) => i.index))).toEqual(moved);
    expect(r.swappedPairs[0]!.names).toEqual(['cat', 'lynx']);
    expect(Math.round(r.swappedPairs[0]!.estimated)).toBe(moved.size);
    const lynx = r.classes.find((c) => c.name === 'lynx')!;
    expect(lynx.swappedWith[0]!.name).toBe('cat');
    expect(lynx.flagged).toBe(moved.size);
    expect(r.issues.every((i) => i.suggested === 0 && i.given === 1)).toBe(true);
  });

  it('neighbour agreement keeps images whose neighbours share their label', () => {
    const { p, labels, moved } = synthetic(1000, 5, 0.05, 9, 0.3);
    // every clean image has a neighbour with its label, the moved ones none
    const support = Int32Array.from({ length: 1000 }, (_, i) => (moved.has(i) ? 0 : 3));
    const plain = findLabelIssues({ probabilities: p, labels, classes: 5 });
    const agreed = findLabelIssues({ probabilities: p, labels, classes: 5, support });
    const a = precisionRecall(
      agreed.issues.map((i) => i.index),
      moved,
    );
    expect(a.precision).toBe(1);
    expect(a.recall).toBeGreaterThan(0.9);
    expect(agreed.estimatedIssues).toBeLessThan(plain.estimatedIssues);
  });

  it('refuses bad input with clear messages', () => {
    expect(() => findLabelIssues({ probabilities: [[1, 0]], labels: [0] })).toThrow(/at least 2 images, got 1/);
    expect(() => findLabelIssues({ probabilities: [[1], [1]], labels: [0, 0] })).toThrow(/at least 2 classes, got 1/);
    expect(() => findLabelIssues({ probabilities: [0.5, 0.5, 0.5, 0.5], labels: [0, 2] })).toThrow(/label 2 of row 1 is not a class index 0..1/);
    expect(() => findLabelIssues({ probabilities: [0.5, 0.5, 3, 0.5], labels: [0, 1] })).toThrow(/row 1 holds 3, not a probability/);
    expect(() => findLabelIssues({ probabilities: [0.5, 0.5, 0.5], labels: [0, 1] })).toThrow(LabelIssuesError);
    expect(() => findLabelIssues({ probabilities: [0.5, 0.5, 0.5, 0.5], labels: [0, 1], rankBy: 'loss' as any })).toThrow(/unknown rankBy 'loss'/);
  });
});

describe('folds and neighbours', () => {
  it('stratified folds: seeded, balanced, a small class spread one image per fold', () => {
    const labels = [...Array(23).fill(0), ...Array(3).fill(1), ...Array(10).fill(2)];
    const f = stratifiedFolds(labels, 5, 7);
    expect(stratifiedFolds(labels, 5, 7)).toEqual(f);
    expect(stratifiedFolds(labels, 5, 8)).not.toEqual(f);
    const sizes = [0, 0, 0, 0, 0];
    for (const v of f) sizes[v]!++;
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    const small = new Set(labels.map((l, i) => (l === 1 ? f[i] : -1)).filter((v) => v >= 0));
    expect(small.size).toBe(3);
    expect(() => stratifiedFolds(labels, 1)).toThrow(/folds must be an integer >= 2/);
  });

  it('outliers: the image far from everything, scored against the rest', async () => {
    const rng = new Rng(2);
    const dim = 8;
    const n = 60;
    const x = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) x[i * dim + d] = (d === i % 2 ? 5 : 0) + 0.3 * rng.normal();
    // row 17: pointing elsewhere
    for (let d = 0; d < dim; d++) x[17 * dim + d] = d === 6 ? 5 : 0;
    const nb = await nearestNeighbours(x, dim, 5);
    expect(nb.k).toBe(5);
    // nearest of row 0 share its direction; itself is never its own neighbour
    for (let j = 0; j < 5; j++) expect(nb.index[j]! % 2).toBe(0);
    for (let i = 0; i < n; i++) for (let j = 0; j < 5; j++) expect(nb.index[i * 5 + j]).not.toBe(i);
    const o = outlierScores(nb.distance, n, 5);
    // farthest first; with a stricter limit, only it
    expect(o.outliers[0]).toBe(17);
    expect(o.z[17]).toBeGreaterThan(10);
    expect(outlierScores(nb.distance, n, 5, { zLimit: 8 }).outliers).toEqual([17]);
    expect(o.score[17]).toBeLessThan(Math.min(...Array.from(o.score).filter((_, i) => i !== 17)));
    const votes = neighbourProbabilities(nb.index, n, 5, Int32Array.from({ length: n }, (_, i) => i % 2), 2);
    expect(votes[0]).toBeGreaterThan(0.9);
    expect(votes[0]! + votes[1]!).toBeCloseTo(1, 6);
  });
});

describe('labelIssuesFromFeatures', () => {
  it('out-of-fold heads and neighbour agreement find labels moved between feature clusters', async () => {
    const rng = new Rng(4);
    const k = 6;
    const dim = 16;
    const n = 600;
    const centres = Array.from({ length: k }, () => Array.from({ length: dim }, () => rng.normal() * 2));
    const x = new Float32Array(n * dim);
    const y = new Int32Array(n);
    const moved = new Set<number>();
    for (let i = 0; i < n; i++) {
      const t = i % k;
      for (let d = 0; d < dim; d++) x[i * dim + d] = centres[t]![d]! + rng.normal();
      y[i] = t;
    }
    for (const i of rng.shuffle(Array.from({ length: n }, (_, i) => i)).slice(0, 30)) {
      y[i] = (y[i]! + 1 + rng.int(k - 1)) % k;
      moved.add(i);
    }
    const r = await labelIssuesFromFeatures(x, y, dim, k, { folds: 4, epochs: 10, seed: 1 });
    const pr = precisionRecall(
      r.issues.map((i) => i.index),
      moved,
    );
    // confident learning is conservative here (moved images whose true class is below its threshold are not
    // counted): every flagged image is a moved one, and the ranking puts the moved ones first
    expect(pr.precision).toBeGreaterThan(0.9);
    expect(pr.recall).toBeGreaterThan(0.5);
    const lowest = Array.from(r.scores, (s, i) => [s, i] as const)
      .sort((a, b) => a[0] - b[0])
      .slice(0, 30);
    expect(lowest.filter(([, i]) => moved.has(i)).length).toBeGreaterThanOrEqual(27);
    expect(r.temperatures).toHaveLength(4);
    expect(r.oofAccuracy).toBeGreaterThan(0.85);
    // without neighbour agreement: plain confident learning, prune by noise rate
    const plain = await labelIssuesFromFeatures(x, y, dim, k, { folds: 4, epochs: 10, seed: 1, neighbourAgreement: false });
    const pp = precisionRecall(
      plain.issues.map((i) => i.index),
      moved,
    );
    expect(pp.precision).toBeGreaterThan(0.8);
    expect(pp.recall).toBeGreaterThan(0.5);
    await expect(labelIssuesFromFeatures(x.subarray(0, 3 * dim), y.subarray(0, 3), dim, k, { folds: 4 })).rejects.toThrow(/3 images cannot be split into 4 folds/);
  });
});
