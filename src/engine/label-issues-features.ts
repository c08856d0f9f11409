/**
 * Label issues from feature vectors: out-of-fold probabilities of K seeded heads (engine/out-of-fold.ts),
 * optionally blended with the votes of each image's nearest neighbours, then confident learning
 * (data/label-issues.ts); outliers from the same neighbours. What `tlearn check --labels` runs once the
 * features are extracted.
 */
import { findLabelIssues, LabelIssuesError, type IssueFilter, type LabelIssuesResult, type LabelQualityScore } from '../data/label-issues.js';
import { neighbourProbabilities, outlierScores, type OutlierScores } from '../data/label-issues-neighbours.js';
import { nearestNeighbours } from './neighbours.js';
import { outOfFoldProbabilities, type OutOfFoldOptions } from './out-of-fold.js';

export interface FeatureLabelIssuesOptions extends Omit<OutOfFoldOptions, 'onProgress'> {
  classNames?: string[];
  rankBy?: LabelQualityScore;
  /** Neighbours for outliers and votes (default 10). */
  neighbours?: number;
  /** Weight of the neighbour votes in the probabilities (0..1; default 0: the heads alone). */
  neighbourWeight?: number;
  /**
   * Neighbour agreement (default true): an image one of whose `neighbours` nearest neighbours shares its label
   * is taken as correctly labelled in the confident joint and never flagged.
   */
  neighbourAgreement?: boolean;
  /** How the issue set is chosen (default low_self_confidence with neighbour agreement, else prune_by_noise_rate). */
  filterBy?: IssueFilter;
  /** Look for outliers (default true). */
  outliers?: boolean;
  /** Robust z-score of the mean neighbour distance above which an image is an outlier (default 5). */
  outlierZ?: number;
  onProgress?: (stage: 'folds' | 'neighbours', done: number, total: number) => void;
}

export interface FeatureLabelIssues extends LabelIssuesResult {
  /** The probabilities confident learning used (out-of-fold, blended with the neighbour votes). */
  probs: Float32Array;
  folds: number;
  temperatures: number[];
  /** Accuracy of the out-of-fold heads alone against the given labels. */
  oofAccuracy: number;
  outliers?: OutlierScores;
  seconds: { folds: number; neighbours: number; total: number };
}

export async function labelIssuesFromFeatures(x: Float32Array, y: Int32Array, dim: number, classes: number, o: FeatureLabelIssuesOptions = {}): Promise<FeatureLabelIssues> {
  const t0 = performance.now();
  const n = y.length;
  const folds = o.folds ?? 5;
  if (!(Number.isInteger(folds) && folds >= 2)) throw new LabelIssuesError(`--folds must be an integer of at least 2, got ${folds}`);
  if (n < folds) throw new LabelIssuesError(`${n} image${n === 1 ? '' : 's'} cannot be split into ${folds} folds: label issues need at least as many images as folds (use fewer --folds, or more images)`);
  const oof = await outOfFoldProbabilities(x, y, dim, classes, { ...o, folds, onProgress: (d, t) => o.onProgress?.('folds', d, t) });
  const tFolds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const w = o.neighbourWeight ?? 0;
  const agreement = o.neighbourAgreement ?? true;
  if (!(w >= 0 && w <= 1)) throw new LabelIssuesError(`neighbour weight must be in [0, 1], got ${w}`);
  const kNear = Math.min(o.neighbours ?? 10, n - 1);
  const wantNeighbours = kNear > 0 && (w > 0 || agreement || (o.outliers ?? true));
  let probs = oof.probs;
  let outliers: OutlierScores | undefined;
  let support: Int32Array | undefined;
  if (wantNeighbours) {
    const nb = await nearestNeighbours(x, dim, kNear, { signal: o.signal });
    o.onProgress?.('neighbours', 1, 1);
    if (w > 0) {
      const votes = neighbourProbabilities(nb.index, n, nb.k, y, classes);
      probs = new Float32Array(oof.probs.length);
      for (let i = 0; i < probs.length; i++) probs[i] = (1 - w) * oof.probs[i]! + w * votes[i]!;
    }
    if (agreement) {
      support = new Int32Array(n);
      for (let i = 0; i < n; i++) for (let j = 0; j < nb.k; j++) if (y[nb.index[i * nb.k + j]!] === y[i]) support[i]!++;
    }
    if (o.outliers ?? true) outliers = outlierScores(nb.distance, n, nb.k, { zLimit: o.outlierZ });
  }
  const r = findLabelIssues({ probabilities: probs, labels: y, classes, classNames: o.classNames, rankBy: o.rankBy, support, filterBy: o.filterBy });
  return {
    ...r,
    probs,
    folds,
    temperatures: oof.temperatures,
    oofAccuracy: oof.accuracy,
    outliers,
    seconds: { folds: tFolds, neighbours: (performance.now() - t1) / 1000, total: (performance.now() - t0) / 1000 },
  };
}
