/**
 * Classification metrics from predicted probabilities and true labels: accuracy, top-k, balanced accuracy,
 * per-class and averaged precision/recall/F1, confusion matrix, most-confused pairs, log-loss and
 * expected calibration error with its reliability bins.
 *
 * Conventions (as scikit-learn's defaults): precision of a class never predicted is 0; recall of a class with
 * no true samples is 0 and such classes are left out of balanced accuracy; macro averages run over the classes
 * that occur in the labels or the predictions.
 */
export interface ClassMetrics {
  name: string;
  precision: number;
  recall: number;
  f1: number;
  /** True samples of the class. */
  support: number;
  /** Samples predicted as the class. */
  predicted: number;
}

export interface Averages {
  precision: number;
  recall: number;
  f1: number;
}

export interface ConfusedPair {
  true: string;
  predicted: string;
  count: number;
}

export interface ReliabilityBin {
  lower: number;
  upper: number;
  count: number;
  /** Mean confidence (max probability) of the samples in the bin. */
  confidence: number;
  accuracy: number;
}

export interface Metrics {
  n: number;
  accuracy: number;
  /** Mean negative log-likelihood of the true class (probabilities clipped at 1e-15). */
  loss: number;
  /** Top-k accuracy with k = topK (default 5, at most the number of classes). */
  top5: number;
  topK: number;
  balancedAccuracy: number;
  macro: Averages;
  weighted: Averages;
  perClass: ClassMetrics[];
  /** confusion[true][predicted] */
  confusion: number[][];
  mostConfused: ConfusedPair[];
  ece: number;
  reliability: ReliabilityBin[];
}

export interface MetricOptions {
  topK?: number;
  bins?: number;
  mostConfused?: number;
}

export class MetricsError extends Error {}

function argmax(p: Float32Array, off: number, k: number): number {
  let best = 0;
  for (let c = 1; c < k; c++) if (p[off + c]! > p[off + best]!) best = c;
  return best;
}

/** Predicted class per row. */
export function argmaxRows(probs: Float32Array, classes: number): Int32Array {
  const n = probs.length / classes;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = argmax(probs, i * classes, classes);
  return out;
}

/** Metrics for rows of class probabilities (`probs.length = labels.length * classNames.length`). */
export function computeMetrics(probs: Float32Array, labels: ArrayLike<number>, classNames: string[], opts: MetricOptions = {}): Metrics {
  const K = classNames.length;
  const n = labels.length;
  if (probs.length !== n * K) throw new MetricsError(`${probs.length} probabilities for ${n} samples of ${K} classes`);
  const topK = Math.min(opts.topK ?? 5, K);
  const nBins = opts.bins ?? 15;
  const confusion = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  let correct = 0;
  let topHits = 0;
  let nll = 0;
  const bins = Array.from({ length: nBins }, () => ({ count: 0, conf: 0, hits: 0 }));
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    if (!(y >= 0 && y < K)) throw new MetricsError(`label ${y} of sample ${i} is outside 0..${K - 1}`);
    const off = i * K;
    const pred = argmax(probs, off, K);
    confusion[y]![pred]!++;
    if (pred === y) correct++;
    const py = probs[off + y]!;
    let higher = 0;
    for (let c = 0; c < K; c++) if (probs[off + c]! > py) higher++;
    if (higher < topK) topHits++;
    nll -= Math.log(Math.min(1, Math.max(py, 1e-15)));
    const conf = probs[off + pred]!;
    const b = Math.min(nBins - 1, Math.floor(conf * nBins));
    bins[b]!.count++;
    bins[b]!.conf += conf;
    bins[b]!.hits += pred === y ? 1 : 0;
  }
  const perClass: ClassMetrics[] = classNames.map((name, c) => {
    const tp = confusion[c]![c]!;
    const support = confusion[c]!.reduce((a, b) => a + b, 0);
    let predicted = 0;
    for (let r = 0; r < K; r++) predicted += confusion[r]![c]!;
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    return { name, precision, recall, f1, support, predicted };
  });
  const present = perClass.filter((m) => m.support > 0 || m.predicted > 0);
  const withSupport = perClass.filter((m) => m.support > 0);
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  const macro = { precision: mean(present.map((m) => m.precision)), recall: mean(present.map((m) => m.recall)), f1: mean(present.map((m) => m.f1)) };
  const wsum = (f: (m: ClassMetrics) => number) => (n ? perClass.reduce((a, m) => a + f(m) * m.support, 0) / n : 0);
  const weighted = { precision: wsum((m) => m.precision), recall: wsum((m) => m.recall), f1: wsum((m) => m.f1) };
  const pairs: ConfusedPair[] = [];
  for (let t = 0; t < K; t++)
    for (let p = 0; p < K; p++) if (t !== p && confusion[t]![p]! > 0) pairs.push({ true: classNames[t]!, predicted: classNames[p]!, count: confusion[t]![p]! });
  pairs.sort((a, b) => b.count - a.count || (a.true < b.true ? -1 : a.true > b.true ? 1 : a.predicted < b.predicted ? -1 : 1));
  const reliability: ReliabilityBin[] = bins.map((b, i) => ({
    lower: i / nBins,
    upper: (i + 1) / nBins,
    count: b.count,
    confidence: b.count ? b.conf / b.count : 0,
    accuracy: b.count ? b.hits / b.count : 0,
  }));
  const ece = n ? reliability.reduce((a, b) => a + (b.count / n) * Math.abs(b.accuracy - b.confidence), 0) : 0;
  return {
    n,
    accuracy: n ? correct / n : 0,
    loss: n ? nll / n : 0,
    top5: n ? topHits / n : 0,
    topK,
    balancedAccuracy: mean(withSupport.map((m) => m.recall)),
    macro,
    weighted,
    perClass,
    confusion,
    mostConfused: pairs.slice(0, opts.mostConfused ?? 20),
    ece,
    reliability,
  };
}
