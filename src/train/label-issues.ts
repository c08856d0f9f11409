/**
 * `tlearn check --labels` as a library call: the images of a folder most likely labelled wrong. Every image
 * (all splits: the folds do not follow the train/val/test split) goes through the backbone once (the features
 * cache), K-fold heads give out-of-fold probabilities, confident learning flags and ranks the label issues,
 * the nearest neighbours in feature space give outliers, and near-duplicates with different labels (the data
 * check's) join the same list.
 */
import path from 'node:path';
import { loadBackbone } from '../backbones/load.js';
import type { PreprocessMode } from '../backbones/preprocess.js';
import type { ResizeKernel, ResizeMode } from '../image/decode.js';
import { DatasetError, loadImageFolder, type ImageFolder, type SkippedFile } from '../data/discover.js';
import { splitDataset, type SplitMode } from '../data/split.js';
import { auditDataset } from '../data/audit.js';
import { ContentHashIndex } from '../data/hash-index.js';
import { ProbeCache } from '../image/probe-cache.js';
import { LabelIssuesError, type ClassHealth, type LabelQualityScore, type SwappedPair } from '../data/label-issues.js';
import { createFeatureExtractor } from '../features/extract.js';
import { labelIssuesFromFeatures } from '../engine/label-issues-features.js';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';

export { LabelIssuesError };

export type LabelIssueKind = 'label' | 'outlier' | 'duplicate';

export interface FolderLabelIssue {
  /** Relative to the dataset folder, with '/' separators: `class/name.jpg` (or `train/class/name.jpg`). */
  file: string;
  /** Absolute path. */
  path: string;
  /** The class the folder gives it. */
  given: string;
  /** The class it more likely belongs to ('' for an outlier nobody near agrees on). */
  suggested: string;
  /** Lower is more likely wrong: label quality (label), exp(−distance/median) (outlier), hash distance/128 (duplicate). */
  score: number;
  kind: LabelIssueKind;
  /** The split `tlearn train` would put it in with the same --split, --split-mode and --seed. */
  split: 'train' | 'val' | 'test';
  /** For a duplicate: the file it looks like. */
  twin?: string;
}

export interface LabelIssuesProgress {
  stage: 'features' | 'folds' | 'neighbours' | 'duplicates';
  done: number;
  total: number;
}

export interface LabelIssuesForFolderOptions {
  exclude?: string[];
  /** Zoo name or folder (default mobilenet_v2_0.35), as for train. */
  backbone?: string;
  cutAt?: string;
  preprocessing?: PreprocessMode;
  resize?: ResizeMode;
  weights?: string;
  kernel?: ResizeKernel;
  /** Folds of the out-of-fold heads (default 5). */
  folds?: number;
  /** Seed of the folds and heads, and of the split the issues are placed in (default 42). */
  seed?: number;
  split?: [number, number, number];
  splitMode?: SplitMode;
  rankBy?: LabelQualityScore;
  /** Weight of the nearest neighbours' votes beside the heads (0..1, default 0: the heads alone). */
  neighbourWeight?: number;
  /**
   * Neighbour agreement (default true): an image one of whose 10 nearest neighbours shares its label is taken as
   * correctly labelled. Much better on scattered noise; false suits dense swaps between two look-alike classes
   * (plain confident learning, prune by noise rate; ACCURACY.md).
   */
  neighbourAgreement?: boolean;
  /** Look for outliers (default true). */
  outliers?: boolean;
  /** Fold the near-duplicates with different labels into the list (decodes every image small once; default true). */
  duplicates?: boolean;
  /** Use the features cache (default true). */
  cache?: boolean;
  threads?: number;
  logger?: Logger;
  onProgress?: (p: LabelIssuesProgress) => void;
  signal?: AbortSignal;
}

export interface FolderLabelIssues {
  root: string;
  classes: string[];
  /** Images found, and of those checked (decoded, in a class with at least 2 images). */
  images: number;
  checked: number;
  folds: number;
  backbone: { name: string; id: string; dim: number };
  /** Flagged images: label issues (most likely wrong first), then near-duplicates with other labels, then outliers. */
  issues: FolderLabelIssue[];
  /** Per class: estimated share of wrong labels, flagged count, most-swapped classes. */
  health: ClassHealth[];
  swappedPairs: SwappedPair[];
  /** Confident learning's estimate of the number of wrong labels. */
  estimatedIssues: number;
  /** Accuracy of the out-of-fold heads against the given labels. */
  oofAccuracy: number;
  temperatures: number[];
  /** Every checked image's label quality (score) and most likely other class, lowest score first. */
  ranking: Array<{ file: string; given: string; suggested: string; score: number }>;
  /** Images not checked, with the reason. */
  skipped: SkippedFile[];
  warnings: string[];
  seconds: { features: number; folds: number; neighbours: number; duplicates: number; total: number };
}

const rel = (root: string, p: string) => path.relative(root, p).split(path.sep).join('/');

/** The images of `folder` most likely labelled wrong, outliers and near-duplicates with different labels. */
export async function labelIssuesForFolder(folder: string, o: LabelIssuesForFolderOptions = {}): Promise<FolderLabelIssues> {
  const t0 = performance.now();
  const log = o.logger ?? silentLogger;
  const folds = o.folds ?? 5;
  if (!(Number.isInteger(folds) && folds >= 2)) throw new LabelIssuesError(`--folds must be an integer of at least 2, got ${folds}`);
  const ds: ImageFolder = await loadImageFolder(folder, { exclude: o.exclude });
  const split = splitDataset(ds, { fractions: o.split, seed: o.seed, mode: o.splitMode });
  const splitOf = new Map<string, FolderLabelIssue['split']>();
  for (const [name, part] of [['train', split.train], ['val', split.val], ['test', split.test]] as const) for (const im of part) splitOf.set(im.path, name);
  const present = new Set(ds.images.map((i) => i.label));
  if (present.size < 2) throw new LabelIssuesError(`${folder} has ${present.size ? `only one class ('${ds.classes[[...present][0]!]}')` : 'no class with images'}: finding wrong labels needs at least two classes`);
  if (ds.images.length < 2 * 2) throw new LabelIssuesError(`${folder} has ${ds.images.length} image${ds.images.length === 1 ? '' : 's'}: finding wrong labels needs at least two classes of at least two images each`);

  const backbone = await loadBackbone(o.backbone, { preprocessing: o.preprocessing, cutAt: o.cutAt, weights: o.weights, logger: log });
  if (o.resize) backbone.resize = o.resize;
  // the extractor's progress, image by image, also to onProgress
  const onProgress = o.onProgress;
  const featureLog: Logger = onProgress
    ? {
        ...log,
        progress: (label, total, unit, start) => {
          const p = log.progress(label, total, unit, start);
          let done = start ?? 0;
          return {
            tick: (k = 1) => {
              p.tick(k);
              done += k;
              onProgress({ stage: 'features', done, total });
            },
            done: () => p.done(),
          };
        },
      }
    : log;
  const fx = await createFeatureExtractor(backbone, { cache: o.cache, kernel: o.kernel, threads: o.threads, logger: featureLog });
  let feats;
  try {
    onProgress?.({ stage: 'features', done: 0, total: ds.images.length });
    feats = await fx.extract(
      ds.images.map((i) => i.path),
      'features',
    );
  } finally {
    await fx.close();
  }
  o.onProgress?.({ stage: 'features', done: ds.images.length, total: ds.images.length });
  if (o.signal?.aborted) throw o.signal.reason ?? new Error('aborted');
  const skipped: SkippedFile[] = [...feats.failed];
  const warnings: string[] = [...ds.warnings];
  // classes with fewer than 2 readable images cannot be checked: a head never sees the class when its one image is held out
  const perClass = new Array<number>(ds.classes.length).fill(0);
  ds.images.forEach((im, i) => feats.ok[i] && perClass[im.label]!++);
  const rows: number[] = [];
  ds.images.forEach((im, i) => {
    if (!feats.ok[i]) return;
    if (perClass[im.label]! < 2) skipped.push({ path: im.path, reason: `the only readable image of class '${ds.classes[im.label]}': its label cannot be checked against others` });
    else rows.push(i);
  });
  for (let c = 0; c < ds.classes.length; c++) {
    if (perClass[c]! >= 2 && perClass[c]! < folds) warnings.push(`class '${ds.classes[c]}' has ${perClass[c]} images, fewer than the ${folds} folds: each is checked by heads trained on the class's other ${perClass[c]! - 1}`);
  }
  const kept = [...new Set(rows.map((i) => ds.images[i]!.label))].sort((a, b) => a - b);
  if (kept.length < 2) throw new LabelIssuesError(`${folder}: finding wrong labels needs at least two classes with at least two readable images each (${kept.length ? `only '${ds.classes[kept[0]!]}' has` : 'none has'})`);
  // the classes checked, renumbered 0..k-1
  const local = new Map(kept.map((c, j) => [c, j]));
  const names = kept.map((c) => ds.classes[c]!);
  const dim = feats.dim;
  const x = new Float32Array(rows.length * dim);
  const y = new Int32Array(rows.length);
  rows.forEach((i, r) => {
    x.set(feats.features.subarray(i * dim, (i + 1) * dim), r * dim);
    y[r] = local.get(ds.images[i]!.label)!;
  });
  log.info(`label issues: ${rows.length} images of ${names.length} classes, ${dim}-d features (${feats.fromCache} from the cache, ${feats.computed} computed), ${folds} folds`);

  const r = await labelIssuesFromFeatures(x, y, dim, names.length, {
    folds,
    seed: o.seed,
    classNames: names,
    rankBy: o.rankBy,
    neighbourWeight: o.neighbourWeight,
    neighbourAgreement: o.neighbourAgreement,
    outliers: o.outliers,
    signal: o.signal,
    onProgress: (stage, done, total) => o.onProgress?.({ stage, done, total }),
  });

  const issues: FolderLabelIssue[] = [];
  const flagged = new Set<string>();
  const entry = (i: number, given: string, suggested: string, score: number, kind: LabelIssueKind, twin?: string): FolderLabelIssue => {
    const im = ds.images[i]!;
    const e: FolderLabelIssue = { file: rel(ds.root, im.path), path: im.path, given, suggested, score, kind, split: splitOf.get(im.path) ?? 'train' };
    if (twin) e.twin = twin;
    return e;
  };
  for (const is of r.issues) {
    const i = rows[is.index]!;
    issues.push(entry(i, names[is.given]!, names[is.suggested]!, is.score, 'label'));
    flagged.add(ds.images[i]!.path);
  }

  let tDup = 0;
  if (o.duplicates ?? true) {
    const t = performance.now();
    const audit = await auditDataset(ds, split, await ContentHashIndex.open(), { decode: true, probes: await ProbeCache.open() });
    const index = new Map(ds.images.map((im, i) => [im.path, i]));
    const labelOf = (p: string) => ds.classes[ds.images[index.get(p)!]!.label]!;
    const pairs: Array<{ a: string; b: string; distance: number }> = [];
    for (const d of audit.duplicates) if (d.classes.length > 1) for (const a of d.paths) for (const b of d.paths) if (a !== b && labelOf(a) !== labelOf(b)) pairs.push({ a, b, distance: 0 });
    for (const nd of audit.decoded?.nearDuplicates ?? []) {
      if (nd.classes.length < 2) continue;
      pairs.push({ a: nd.paths[0], b: nd.paths[1], distance: nd.distance }, { a: nd.paths[1], b: nd.paths[0], distance: nd.distance });
    }
    pairs.sort((p, q) => p.distance - q.distance);
    for (const p of pairs) {
      if (flagged.has(p.a)) continue;
      flagged.add(p.a);
      issues.push(entry(index.get(p.a)!, labelOf(p.a), labelOf(p.b), p.distance / 128, 'duplicate', rel(ds.root, p.b)));
    }
    tDup = (performance.now() - t) / 1000;
    o.onProgress?.({ stage: 'duplicates', done: 1, total: 1 });
  }

  if (r.outliers) {
    for (const j of r.outliers.outliers) {
      const i = rows[j]!;
      if (flagged.has(ds.images[i]!.path)) continue;
      flagged.add(ds.images[i]!.path);
      // the most likely other class by the probabilities, or '' when its own is still the most likely
      const given = y[j]!;
      let best = -1;
      for (let c = 0; c < names.length; c++) if (best < 0 || r.probs[j * names.length + c]! > r.probs[j * names.length + best]!) best = c;
      issues.push(entry(i, names[given]!, best === given ? '' : names[best]!, r.outliers.score[j]!, 'outlier'));
    }
  }

  return {
    root: ds.root,
    classes: ds.classes,
    images: ds.images.length,
    checked: rows.length,
    folds,
    backbone: { name: backbone.name, id: backbone.id, dim },
    issues,
    health: r.classes,
    swappedPairs: r.swappedPairs,
    estimatedIssues: r.estimatedIssues,
    oofAccuracy: r.oofAccuracy,
    temperatures: r.temperatures,
    ranking: rows
      .map((i, j) => ({ file: rel(ds.root, ds.images[i]!.path), given: names[y[j]!]!, suggested: names[r.suggested[j]!]!, score: r.scores[j]! }))
      .sort((a, b) => a.score - b.score),
    skipped,
    warnings,
    seconds: { features: feats.seconds, folds: r.seconds.folds, neighbours: r.seconds.neighbours, duplicates: tDup, total: (performance.now() - t0) / 1000 },
  };
}

/** The CSV of `check --labels --scores`: every checked image, lowest label quality first. */
export function labelScoresCsv(r: FolderLabelIssues): string {
  return labelIssuesCsv(r.ranking.map((x) => ({ ...x, path: '', kind: 'label', split: 'train' }))).replace(/,label$/gm, '').replace(/^file,given,suggested,score,kind$/m, 'file,given,suggested,score');
}

/** The CSV of `check --labels --csv`: a header, then one row per flagged image, best-ranked first. */
export function labelIssuesCsv(issues: FolderLabelIssue[]): string {
  const q = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  return `${['file,given,suggested,score,kind', ...issues.map((i) => [q(i.file), q(i.given), q(i.suggested), i.score.toFixed(6), i.kind].join(','))].join('\n')}\n`;
}

export { DatasetError };

/** The report of `check --labels` as lines: the flagged images (the first `top`), class health and swapped pairs. */
export function formatLabelIssues(r: FolderLabelIssues, top = 30): string[] {
  const by = (k: LabelIssueKind) => r.issues.filter((i) => i.kind === k).length;
  const lines = [
    `label issues (${r.backbone.name}, ${r.folds}-fold out-of-fold heads, accuracy ${(100 * r.oofAccuracy).toFixed(1)}% against the given labels; ${r.checked} of ${r.images} images checked):`,
    `  ${by('label')} likely wrong label${by('label') === 1 ? '' : 's'} (confident learning estimates ${Math.round(r.estimatedIssues)}), ${by('duplicate')} near-duplicate${by('duplicate') === 1 ? '' : 's'} with another label, ${by('outlier')} outlier${by('outlier') === 1 ? '' : 's'}`,
  ];
  if (r.issues.length) {
    const shown = r.issues.slice(0, top);
    const w = Math.max(...shown.map((i) => i.file.length), 4);
    const g = Math.max(...shown.map((i) => i.given.length), 5);
    lines.push(`  ${'file'.padEnd(w)}  ${'given'.padEnd(g)}  suggested → score  kind`);
    for (const i of shown) lines.push(`  ${i.file.padEnd(w)}  ${i.given.padEnd(g)}  ${i.suggested || '-'} → ${i.score < 1e-3 ? i.score.toExponential(1) : i.score.toFixed(4)}  ${i.kind}${i.twin ? ` (looks like ${i.twin})` : ''}${i.split === 'test' ? ' [test split]' : ''}`);
    if (r.issues.length > top) lines.push(`  and ${r.issues.length - top} more (--csv writes them all)`);
  }
  const worst = [...r.health].filter((c) => c.estimatedWrong >= 0.5).sort((a, b) => b.wrongShare - a.wrongShare).slice(0, 10);
  if (worst.length) {
    lines.push('  classes with the largest estimated share of wrong labels:');
    for (const c of worst) lines.push(`    ${c.name}: ${(100 * c.wrongShare).toFixed(1)}% of ${c.images} (about ${Math.round(c.estimatedWrong)}), ${c.flagged} flagged${c.swappedWith.length ? `; swapped with ${c.swappedWith.map((s) => `${s.name} (${Math.round(s.estimated)})`).join(', ')}` : ''}`);
  }
  if (r.swappedPairs.length) lines.push(`  most-swapped pairs: ${r.swappedPairs.slice(0, 5).map((p) => `${p.names[0]} ↔ ${p.names[1]} (about ${Math.round(p.estimated)})`).join(', ')}`);
  for (const w of r.warnings) lines.push(`  note: ${w}`);
  for (const s of r.skipped) lines.push(`  not checked: ${path.relative(r.root, s.path)}: ${s.reason}`);
  lines.push(`  label check in ${r.seconds.total.toFixed(1)}s (features ${r.seconds.features.toFixed(1)}s, folds ${r.seconds.folds.toFixed(1)}s, neighbours ${r.seconds.neighbours.toFixed(1)}s, duplicates ${r.seconds.duplicates.toFixed(1)}s)`);
  return lines;
}
