/**
 * Label issues by confident learning (Northcutt, Jiang & Chuang, JAIR 2021; cleanlab's `find_label_issues`),
 * pure math on arrays: out-of-sample predicted probabilities and the given labels in, the images most likely
 * labelled wrong out, ranked. Per-class thresholds (the mean self-confidence of each class), the confident joint
 * calibrated to the class counts, the estimated joint and noise matrices, the issue set by pruning by noise rate,
 * a label-quality score per image (self-confidence, or normalized margin), and per-class health (the estimated
 * share of wrong labels and the most-swapped class pairs, as cleanlab's `health_summary`).
 */

export type LabelQualityScore = 'self_confidence' | 'normalized_margin';
export const LABEL_QUALITY_SCORES: LabelQualityScore[] = ['self_confidence', 'normalized_margin'];

export interface FindLabelIssuesInput {
  /** n rows of `classes` probabilities (out-of-sample: each row from a model that did not see that image), flat or as rows. */
  probabilities: Float32Array | Float64Array | number[] | number[][];
  /** The given label of each row, 0..classes-1. */
  labels: ArrayLike<number>;
  /** Number of classes (default: the row length). */
  classes?: number;
  /** Class names for the health summary (default '0', '1', ...). */
  classNames?: string[];
  /** How issues are ranked (lower = more likely wrong): 'self_confidence' (default) or 'normalized_margin'. */
  rankBy?: LabelQualityScore;
  /** Classes with fewer images than this are never pruned below it (cleanlab's min_examples_per_class; default 1). */
  minExamplesPerClass?: number;
  /**
   * How the issue set is chosen (cleanlab's filter_by): 'prune_by_noise_rate' flags, for each (given i, true j),
   * the n·Q[i][j] images labelled i with the largest margin p_j − p_i; 'low_self_confidence' and
   * 'low_normalized_margin' flag the n·(1 − trace Q) images of lowest score. Default 'low_self_confidence'
   * when `support` is given, else 'prune_by_noise_rate'.
   */
  filterBy?: IssueFilter;
  /**
   * Neighbour agreement: for each row, how many of its nearest neighbours in feature space carry its given
   * label. A row with at least `minSupport` (default 1) is counted on the diagonal of the confident joint (its
   * label is not confidently wrong when similar images share it) and is never flagged.
   */
  support?: ArrayLike<number>;
  minSupport?: number;
}

export type IssueFilter = 'prune_by_noise_rate' | 'low_self_confidence' | 'low_normalized_margin';
export const ISSUE_FILTERS: IssueFilter[] = ['prune_by_noise_rate', 'low_self_confidence', 'low_normalized_margin'];

export interface LabelIssue {
  /** Row index in the input. */
  index: number;
  given: number;
  /** The most likely other label. */
  suggested: number;
  /** Label quality in [0, 1]: lower is more likely wrong. */
  score: number;
}

export interface ClassHealth {
  class: number;
  name: string;
  images: number;
  /** Of this class's images, how many are estimated to carry a wrong label (given this class, truly another). */
  estimatedWrong: number;
  /** estimatedWrong / images. */
  wrongShare: number;
  /** Images flagged in this class. */
  flagged: number;
  /** The classes it is most often swapped with, in both directions (estimated counts), largest first. */
  swappedWith: Array<{ class: number; name: string; estimated: number }>;
}

export interface SwappedPair {
  classes: [number, number];
  names: [string, string];
  /** Estimated images of either class labelled as the other. */
  estimated: number;
}

export interface LabelIssuesResult {
  /** The flagged rows, most likely wrong first. */
  issues: LabelIssue[];
  /** The quality score of every row (same order as the input). */
  scores: Float64Array;
  /** The most likely other label of every row. */
  suggested: Int32Array;
  /** Per-class threshold: the mean probability of the class over the images given it. */
  thresholds: number[];
  /** confidentJoint[given][true]: counts of images confidently of `true` among those labelled `given`. */
  confidentJoint: number[][];
  /** The estimated joint P(given, true), calibrated to the class counts, summing to 1. */
  joint: number[][];
  /** noiseMatrix[given][true] = P(given | true). */
  noiseMatrix: number[][];
  /** The estimated number of wrong labels: n times the off-diagonal mass of the joint. */
  estimatedIssues: number;
  classes: ClassHealth[];
  /** The most-swapped class pairs, largest first (at most 20). */
  swappedPairs: SwappedPair[];
}

export class LabelIssuesError extends Error {}

/** Flattens and checks the input; returns n, k and row-major probabilities. */
export function toMatrix(probabilities: FindLabelIssuesInput['probabilities'], n: number, classes?: number): { p: Float64Array; k: number } {
  if (Array.isArray(probabilities) && Array.isArray(probabilities[0])) {
    const rows = probabilities as number[][];
    if (rows.length !== n) throw new LabelIssuesError(`${rows.length} rows of probabilities for ${n} labels`);
    const k = classes ?? rows[0]!.length;
    const p = new Float64Array(n * k);
    rows.forEach((r, i) => {
      if (r.length !== k) throw new LabelIssuesError(`row ${i} has ${r.length} probabilities, expected ${k}`);
      p.set(r, i * k);
    });
    return { p, k };
  }
  const flat = probabilities as ArrayLike<number>;
  if (!n) throw new LabelIssuesError('no labels');
  const k = classes ?? flat.length / n;
  if (!Number.isInteger(k) || flat.length !== n * k) throw new LabelIssuesError(`${flat.length} probabilities do not make ${n} rows${classes ? ` of ${classes}` : ''}`);
  return { p: Float64Array.from(flat), k };
}

/** Label quality of row i: its probability of the given label, or the normalized margin ((p_given - max other + 1) / 2). */
function qualityOf(p: Float64Array, k: number, i: number, given: number, rankBy: LabelQualityScore): { score: number; other: number } {
  let other = -1;
  let best = -Infinity;
  for (let j = 0; j < k; j++) {
    if (j === given) continue;
    const v = p[i * k + j]!;
    if (v > best) {
      best = v;
      other = j;
    }
  }
  const self = p[i * k + given]!;
  return { score: rankBy === 'normalized_margin' ? (self - (other < 0 ? 0 : best) + 1) / 2 : self, other: other < 0 ? given : other };
}

/**
 * Finds label issues by confident learning. Q is the confident joint calibrated to the class counts and
 * normalised. Prune by noise rate (cleanlab's default): for each pair (given i, true j), the n·Q[i][j] images
 * labelled i with the largest margin p_j − p_i are flagged. Low self-confidence: the n·(1 − trace Q) images of
 * lowest self-confidence. With `support` (neighbour agreement), an image whose label its nearest neighbours
 * share counts as correctly labelled in Q and is not flagged. The flagged images are ranked by the score.
 */
export function findLabelIssues(input: FindLabelIssuesInput): LabelIssuesResult {
  const labels = input.labels;
  const n = labels.length;
  if (n < 2) throw new LabelIssuesError(`label issues need at least 2 images, got ${n}`);
  const { p, k } = toMatrix(input.probabilities, n, input.classes);
  if (k < 2) throw new LabelIssuesError(`label issues need at least 2 classes, got ${k}`);
  const rankBy = input.rankBy ?? 'self_confidence';
  if (!LABEL_QUALITY_SCORES.includes(rankBy)) throw new LabelIssuesError(`unknown rankBy '${rankBy}' (${LABEL_QUALITY_SCORES.join(', ')})`);
  const names = input.classNames ?? Array.from({ length: k }, (_, i) => String(i));
  const minPerClass = input.minExamplesPerClass ?? 1;
  const support = input.support;
  if (support && support.length !== n) throw new LabelIssuesError(`${support.length} neighbour counts for ${n} labels`);
  const minSupport = input.minSupport ?? 1;
  const supported = (i: number) => (support ? support[i]! >= minSupport : false);
  const filterBy = input.filterBy ?? (support ? 'low_self_confidence' : 'prune_by_noise_rate');
  if (!ISSUE_FILTERS.includes(filterBy)) throw new LabelIssuesError(`unknown filterBy '${filterBy}' (${ISSUE_FILTERS.join(', ')})`);
  const counts = new Array<number>(k).fill(0);
  for (let i = 0; i < n; i++) {
    const l = labels[i]!;
    if (!(Number.isInteger(l) && l >= 0 && l < k)) throw new LabelIssuesError(`label ${l} of row ${i} is not a class index 0..${k - 1}`);
    counts[l]!++;
    for (let j = 0; j < k; j++) {
      const v = p[i * k + j]!;
      if (!(v >= 0 && v <= 1 + 1e-6)) throw new LabelIssuesError(`row ${i} holds ${v}, not a probability`);
    }
  }

  // per-class thresholds: the mean self-confidence of each class
  const thresholds = new Array<number>(k).fill(0);
  for (let i = 0; i < n; i++) thresholds[labels[i]!]! += p[i * k + labels[i]!]!;
  for (let j = 0; j < k; j++) thresholds[j] = counts[j] ? thresholds[j]! / counts[j]! : 1;

  // the confident joint: each image counted under the most likely class among those it is confidently in
  const cj = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (let i = 0; i < n; i++) {
    let best = -1;
    let bestP = -Infinity;
    for (let j = 0; j < k; j++) {
      const v = p[i * k + j]!;
      // a small tolerance as cleanlab's (thresholds minus 1e-6) so an image at exactly the threshold counts
      if (v >= thresholds[j]! - 1e-6 && v > bestP) {
        bestP = v;
        best = j;
      }
    }
    // neighbour agreement: similar images with the same label keep it on the diagonal
    if (best >= 0) cj[labels[i]!]![best !== labels[i] && supported(i) ? labels[i]! : best]!++;
  }

  // calibrated: each row scaled to the class count, then normalised to a joint distribution
  const joint = cj.map((row, i) => {
    const s = row.reduce((a, b) => a + b, 0);
    return row.map((c) => (s ? (c / s) * counts[i]! : 0));
  });
  for (let i = 0; i < k; i++) if (!joint[i]!.some((v) => v > 0)) joint[i]![i] = counts[i]!; // a class with no confident image: assume clean
  const total = joint.reduce((a, r) => a + r.reduce((x, y) => x + y, 0), 0);
  for (const row of joint) for (let j = 0; j < k; j++) row[j] = row[j]! / total;
  const trueMass = Array.from({ length: k }, (_, j) => joint.reduce((a, r) => a + r[j]!, 0));
  const noiseMatrix = joint.map((row) => row.map((v, j) => (trueMass[j]! > 0 ? v / trueMass[j]! : 0)));

  const scores = new Float64Array(n);
  const suggested = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const q = qualityOf(p, k, i, labels[i]!, rankBy);
    scores[i] = q.score;
    suggested[i] = q.other;
  }

  const flagged = new Uint8Array(n);
  const byGiven: number[][] = Array.from({ length: k }, () => []);
  for (let i = 0; i < n; i++) if (!supported(i)) byGiven[labels[i]!]!.push(i);
  let offDiagonal = 0;
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) if (i !== j) offDiagonal += joint[i]![j]!;
  if (filterBy !== 'prune_by_noise_rate') {
    // the estimated number of wrong labels, lowest score first (never below minExamplesPerClass in a class)
    const by = filterBy === 'low_normalized_margin' && rankBy !== 'normalized_margin' ? Float64Array.from({ length: n }, (_, i) => qualityOf(p, k, i, labels[i]!, 'normalized_margin').score) : scores;
    const order = byGiven.flat().sort((a, b) => by[a]! - by[b]! || a - b);
    const left = [...counts];
    let want = Math.round(n * offDiagonal);
    for (const i of order) {
      if (want <= 0) break;
      if (left[labels[i]!]! <= minPerClass) continue;
      flagged[i] = 1;
      left[labels[i]!]!--;
      want--;
    }
  } else {
    for (let gi = 0; gi < k; gi++) {
      const members = byGiven[gi]!;
      let budget = Math.max(0, members.length - minPerClass);
      const wanted: Array<[number, number]> = [];
      for (let tj = 0; tj < k; tj++) if (tj !== gi) wanted.push([tj, Math.round(n * joint[gi]![tj]!)]);
      // the largest off-diagonal counts first, so the budget goes where the joint puts most mass
      wanted.sort((a, b) => b[1] - a[1]);
      for (const [tj, want] of wanted) {
        const take = Math.min(want, budget);
        if (take <= 0) continue;
        const ranked = members.filter((i) => !flagged[i]).sort((a, b) => p[b * k + tj]! - p[b * k + gi]! - (p[a * k + tj]! - p[a * k + gi]!));
        for (const i of ranked.slice(0, take)) flagged[i] = 1;
        budget -= Math.min(take, ranked.length);
      }
    }
  }

  const issues: LabelIssue[] = [];
  for (let i = 0; i < n; i++) if (flagged[i]) issues.push({ index: i, given: labels[i]!, suggested: suggested[i]!, score: scores[i]! });
  issues.sort((a, b) => a.score - b.score || a.index - b.index);

  const health = healthSummary(joint, counts, names, n, issues);
  return { issues, scores, suggested, thresholds, confidentJoint: cj, joint, noiseMatrix, estimatedIssues: health.estimatedIssues, classes: health.classes, swappedPairs: health.swappedPairs };
}

/** Per class: the estimated share of wrong labels and the classes it is swapped with; the most-swapped pairs overall. */
export function healthSummary(joint: number[][], counts: number[], names: string[], n: number, issues: LabelIssue[] = []): { classes: ClassHealth[]; swappedPairs: SwappedPair[]; estimatedIssues: number } {
  const k = counts.length;
  const flagged = new Array<number>(k).fill(0);
  for (const is of issues) flagged[is.given]!++;
  let estimatedIssues = 0;
  const pairs: SwappedPair[] = [];
  for (let i = 0; i < k; i++) {
    for (let j = i + 1; j < k; j++) {
      const est = n * (joint[i]![j]! + joint[j]![i]!);
      if (est >= 0.5) pairs.push({ classes: [i, j], names: [names[i]!, names[j]!], estimated: est });
    }
  }
  pairs.sort((a, b) => b.estimated - a.estimated);
  const classes = counts.map((c, i) => {
    let wrong = 0;
    for (let j = 0; j < k; j++) if (j !== i) wrong += n * joint[i]![j]!;
    estimatedIssues += wrong;
    const swappedWith = pairs
      .filter((pp) => pp.classes.includes(i))
      .slice(0, 3)
      .map((pp) => {
        const o = pp.classes[0] === i ? pp.classes[1] : pp.classes[0];
        return { class: o, name: names[o]!, estimated: pp.estimated };
      });
    return { class: i, name: names[i]!, images: c, estimatedWrong: wrong, wrongShare: c ? wrong / c : 0, flagged: flagged[i]!, swappedWith };
  });
  return { classes, swappedPairs: pairs.slice(0, 20), estimatedIssues };
}
