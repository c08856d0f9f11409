/**
 * The open-set threshold: an image whose best class probability is under it is answered "unknown".
 *
 * Chosen once, on the validation split, from the probabilities the shipped model outputs there (so it must be
 * computed after the model is final, calibration included), and recorded in the model's metadata.json.
 * `predict`, `evaluate` and `serve` use it unless given another one.
 */

export interface ThresholdRule {
  /** Keep this fraction of the correct validation predictions (default 0.95). */
  keepCorrect: number;
}

export const DEFAULT_THRESHOLD_RULE: ThresholdRule = { keepCorrect: 0.95 };

/** How a threshold splits the predictions of one labelled split. */
export interface RejectionStats {
  threshold: number;
  n: number;
  /** Images answered "unknown" (best probability under the threshold). */
  rejected: number;
  correct: number;
  correctRejected: number;
  wrong: number;
  wrongRejected: number;
  /** Accuracy on the images that were not rejected (NaN when all were). */
  acceptedAccuracy: number;
}

export interface OpenSetThreshold {
  /** The threshold on the best class probability. */
  value: number;
  /** The rule in words. */
  rule: string;
  keepCorrect: number;
  /** What it does on the validation split it was chosen on. */
  val: RejectionStats;
}

function bestProbabilities(probs: ArrayLike<number>, n: number, K: number): { best: Float64Array; pred: Int32Array } {
  const best = new Float64Array(n);
  const pred = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let b = 0;
    for (let c = 1; c < K; c++) if (probs[i * K + c]! > probs[i * K + b]!) b = c;
    pred[i] = b;
    best[i] = probs[i * K + b]!;
  }
  return { best, pred };
}

function rowsOf(probs: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = labels.length;
  if (n === 0) return 0;
  const K = probs.length / n;
  if (!Number.isInteger(K) || K < 1) throw new Error(`${probs.length} probabilities do not make ${n} rows`);
  return K;
}

/** What `threshold` rejects among these predictions (rows of class probabilities, true labels). */
export function rejectionStats(probs: ArrayLike<number>, labels: ArrayLike<number>, threshold: number): RejectionStats {
  const n = labels.length;
  const K = rowsOf(probs, labels);
  const { best, pred } = bestProbabilities(probs, n, K);
  const s: RejectionStats = { threshold, n, rejected: 0, correct: 0, correctRejected: 0, wrong: 0, wrongRejected: 0, acceptedAccuracy: NaN };
  for (let i = 0; i < n; i++) {
    const ok = pred[i] === labels[i];
    const rejected = best[i]! < threshold;
    if (ok) s.correct++;
    else s.wrong++;
    if (rejected) {
      s.rejected++;
      if (ok) s.correctRejected++;
      else s.wrongRejected++;
    }
  }
  const accepted = n - s.rejected;
  s.acceptedAccuracy = accepted ? (s.correct - s.correctRejected) / accepted : NaN;
  return s;
}

/**
 * The default threshold: the highest value that still keeps `keepCorrect` of the correct validation
 * predictions (their best probability is >= it). With no correct prediction the threshold is 0 (nothing is
 * rejected).
 */
export function chooseThreshold(valProbs: ArrayLike<number>, valLabels: ArrayLike<number>, rule: ThresholdRule = DEFAULT_THRESHOLD_RULE): OpenSetThreshold {
  if (!(rule.keepCorrect > 0 && rule.keepCorrect <= 1)) throw new Error(`keepCorrect must be in (0, 1], got ${rule.keepCorrect}`);
  const n = valLabels.length;
  const K = rowsOf(valProbs, valLabels);
  const { best, pred } = bestProbabilities(valProbs, n, K);
  const correct: number[] = [];
  for (let i = 0; i < n; i++) if (pred[i] === valLabels[i]) correct.push(best[i]!);
  correct.sort((a, b) => a - b);
  const keep = Math.ceil(rule.keepCorrect * correct.length);
  // correct[correct.length - keep] is the smallest probability among the `keep` most confident correct ones.
  const value = correct.length ? Math.fround(correct[correct.length - keep]!) : 0;
  return {
    value,
    rule: `the highest threshold that keeps ${Math.round(rule.keepCorrect * 1000) / 10}% of the correct validation predictions`,
    keepCorrect: rule.keepCorrect,
    val: rejectionStats(valProbs, valLabels, value),
  };
}

/** One line for summaries: what the threshold rejects on a split. */
export function describeRejection(s: RejectionStats): string {
  const pct = (a: number, b: number) => (b ? `${((100 * a) / b).toFixed(1)}%` : '-');
  const acc = Number.isNaN(s.acceptedAccuracy) ? '-' : `${(100 * s.acceptedAccuracy).toFixed(2)}%`;
  return `${s.threshold.toFixed(4)}: rejects ${s.rejected} of ${s.n} (${pct(s.rejected, s.n)}): ${s.wrongRejected} of ${s.wrong} wrong, ${s.correctRejected} of ${s.correct} correct; accuracy on the rest ${acc}`;
}
