/**
 * `tlearn check`: the dataset audit without training. Walks the folder as training would (links followed once,
 * loops and dangling links reported), splits it as training would (same seed and fractions), decodes every
 * image small once (remembered by content for next time), and reports classes and counts, formats, every
 * skipped file with its reason, identical files within and across classes (a label conflict), near-duplicates
 * that land in different splits, images smaller than the model's input and class imbalance — and whether the
 * folder can be trained on. `tlearn train` runs the same audit without decoding, and stops on what `blocking`
 * lists (label conflicts, link loops) unless told to go on.
 */
import path from 'node:path';
import type { Logger } from '../util/log.js';
import { auditDataset, IMBALANCE_WARNING, listSome, type DatasetAudit } from './audit.js';
import { DatasetError, loadImageFolder, type ImageFolder, type LoadImageFolderOptions, type SkippedFile } from './discover.js';
import { ContentHashIndex } from './hash-index.js';
import { ProbeCache } from '../image/probe-cache.js';
import { comparePaths } from './walk.js';
import { assertSplitUsable, splitDataset, type DatasetSplit, type SplitMode } from './split.js';

export interface CheckOptions extends LoadImageFolderOptions {
  split?: [number, number, number];
  splitMode?: SplitMode;
  seed?: number;
  /** The model's input size (height, width) for the small-image check; default 224x224. */
  inputSize?: [number, number];
  /** Decode every image small once (default true; train does not). */
  decode?: boolean;
  /** Largest perceptual-hash distance (of 128 bits) of a near-duplicate pair; default 8. */
  nearDistance?: number;
  logger?: Logger;
}

export interface ClassCount {
  name: string;
  /** Image files found. */
  images: number;
  /** Of those, how many decode (equal to images when not decoded). */
  usable: number;
}

export interface DatasetCheck {
  root: string;
  /** Whether `tlearn train` can train on it. */
  trainable: boolean;
  /** Why not, in one line. */
  error?: string;
  classes: ClassCount[];
  images: number;
  usable: number;
  excluded: string[];
  split?: { train: number; val: number; test: number; note: string };
  /** Every file not used, with its reason: the walk's (not an image, hidden, links...) and, decoded, the unreadable. */
  skipped: SkippedFile[];
  /** Symbolic link loops (also in skipped). */
  loops: SkippedFile[];
  audit?: DatasetAudit;
  /** Things worth knowing, one line each. */
  warnings: string[];
  /** What stops `tlearn train` unless it is told to go on (--force): label conflicts, link loops. */
  blocking: string[];
  seconds: number;
}

export interface CheckedData {
  ds: ImageFolder;
  split: DatasetSplit;
  audit: DatasetAudit;
  check: DatasetCheck;
}

/** What should stop a run: identical files with different labels, symbolic link loops. */
export function blockingProblems(ds: ImageFolder, audit: DatasetAudit): string[] {
  const rel = (p: string) => path.relative(ds.root, p);
  const out: string[] = [];
  const conflicts = audit.duplicates.filter((d) => d.classes.length > 1);
  if (conflicts.length) {
    out.push(`${conflicts.length} group${conflicts.length > 1 ? 's' : ''} of identical files ha${conflicts.length > 1 ? 've' : 's'} different labels (label conflict): ${listSome(conflicts.map((d) => d.paths.map(rel).join(' = ')), 5)}`);
  }
  for (const l of ds.loops ?? []) out.push(`${rel(l.path)}: ${l.reason}`);
  return out;
}

function warningsOf(ds: ImageFolder, split: DatasetSplit | undefined, audit: DatasetAudit | undefined, classes: ClassCount[]): string[] {
  const rel = (p: string) => path.relative(ds.root, p);
  const w = [...ds.warnings];
  for (const c of classes) if (c.usable === 1) w.push(`class '${c.name}' has only 1 usable image: it can be in one split only`);
  if (!audit) return w;
  const im = audit.imbalance;
  if (im.ratio >= IMBALANCE_WARNING) w.push(`classes are imbalanced: '${im.largest.name}' has ${im.largest.images} images, '${im.smallest.name}' ${im.smallest.images} (${im.ratio === Infinity ? '∞' : im.ratio.toFixed(1)}x); consider --class-weights auto`);
  if (split && audit.crossSplit) w.push(`${audit.crossSplit} group${audit.crossSplit > 1 ? 's' : ''} of identical files span the train/val/test splits: test accuracy will be optimistic`);
  const d = audit.decoded;
  if (d?.nearCrossSplit) {
    const cross = d.nearDuplicates.filter((n) => n.splits.length > 1);
    w.push(`${d.nearCrossSplit} pair${d.nearCrossSplit > 1 ? 's' : ''} of near-duplicate images would land in different splits: ${listSome(cross.map((n) => `${rel(n.paths[0])} ~ ${rel(n.paths[1])}`), 5)}`);
  }
  if (d?.small.length) w.push(`${d.small.length} image${d.small.length > 1 ? 's are' : ' is'} smaller than the model's input ${d.inputSize.join('x')} (upscaled): ${listSome(d.small.map((s) => `${rel(s.path)} (${s.width}x${s.height})`), 5)}`);
  return w;
}

function notTrainable(root: string, error: string, t0: number, partial: Partial<DatasetCheck> = {}): DatasetCheck {
  return { root, trainable: false, error, classes: [], images: 0, usable: 0, excluded: [], skipped: [], loops: [], warnings: [], blocking: [], ...partial, seconds: (performance.now() - t0) / 1000 };
}

/** Walks, splits and audits a dataset folder; `check` says whether it can be trained on and what is wrong. */
export async function checkData(folder: string, o: CheckOptions = {}): Promise<CheckedData | { check: DatasetCheck }> {
  const t0 = performance.now();
  const root = path.resolve(folder);
  let ds: ImageFolder;
  try {
    ds = await loadImageFolder(folder, { exclude: o.exclude });
  } catch (e) {
    if (e instanceof DatasetError) return { check: notTrainable(root, e.message, t0) };
    throw e;
  }
  const split = splitDataset(ds, { fractions: o.split, seed: o.seed, mode: o.splitMode });
  const hashes = await ContentHashIndex.open();
  const decode = o.decode ?? true;
  const audit = await auditDataset(ds, split, hashes, { decode, probes: decode ? await ProbeCache.open() : undefined, inputSize: o.inputSize, nearDistance: o.nearDistance, logger: o.logger });
  const bad = new Set((audit.decoded?.unreadable ?? []).map((u) => u.path));
  const classes = ds.classes.map((name) => ({ name, images: 0, usable: 0 }));
  for (const im of ds.images) {
    classes[im.label]!.images++;
    if (!bad.has(im.path)) classes[im.label]!.usable++;
  }
  const usable = ds.images.length - bad.size;
  const check: DatasetCheck = {
    root: ds.root,
    trainable: true,
    classes,
    images: ds.images.length,
    usable,
    excluded: ds.excluded,
    split: { train: split.train.length, val: split.val.length, test: split.test.length, note: split.note },
    skipped: [...ds.skipped, ...(audit.decoded?.unreadable ?? [])].sort((a, b) => comparePaths(a.path, b.path)),
    loops: ds.loops ?? [],
    audit,
    warnings: warningsOf(ds, split, audit, classes),
    blocking: blockingProblems(ds, audit),
    seconds: 0,
  };
  const withImages = classes.filter((c) => c.usable > 0);
  if (!usable) Object.assign(check, { trainable: false, error: `no usable image under ${folder} (${ds.images.length} image files, none can be decoded)` });
  else if (withImages.length < 2) Object.assign(check, { trainable: false, error: `${folder} has only one class with usable images ('${withImages[0]!.name}'); a classifier needs at least two` });
  else {
    try {
      assertSplitUsable(split, ds.images.length);
    } catch (e) {
      Object.assign(check, { trainable: false, error: (e as Error).message });
    }
  }
  check.seconds = (performance.now() - t0) / 1000;
  return { ds, split, audit, check };
}

/** The audit of a dataset folder without training (see checkData). */
export async function checkDataset(folder: string, options: CheckOptions = {}): Promise<DatasetCheck> {
  return (await checkData(folder, options)).check;
}

export function formatCheck(c: DatasetCheck): string[] {
  const rel = (p: string) => path.relative(c.root, p) || '.';
  if (!c.classes.length) return [`dataset: ${c.root}`, `not trainable: ${c.error}`];
  const lines = [`dataset: ${c.root}`];
  const width = Math.max(...c.classes.map((k) => k.name.length), 5);
  lines.push(`  ${c.classes.length} classes, ${c.usable} usable images${c.usable !== c.images ? ` (of ${c.images} image files)` : ''}${c.excluded.length ? `; excluded: ${c.excluded.join(', ')}` : ''}`);
  const shown = c.classes.length > 40 ? [...c.classes].sort((a, b) => a.usable - b.usable).slice(0, 40) : c.classes;
  if (shown !== c.classes) lines.push(`  the 40 smallest of ${c.classes.length} classes:`);
  for (const k of shown) lines.push(`    ${k.name.padEnd(width)}  ${String(k.usable).padStart(6)}${k.usable !== k.images ? ` (${k.images - k.usable} unreadable)` : ''}`);
  if (c.split) lines.push(`  split: train ${c.split.train}, val ${c.split.val}, test ${c.split.test} — ${c.split.note}`);
  const a = c.audit;
  if (a) {
    lines.push(`  formats: ${Object.entries(a.formats).sort((x, y) => y[1] - x[1]).map(([f, n]) => `${n} ${f}`).join(', ')}`);
    if (a.extensionMismatches.length) lines.push(`  content does not match the extension: ${listSome(a.extensionMismatches.map((m) => `${rel(m.path)} (${m.format})`))}`);
    const within = a.duplicates.filter((d) => d.classes.length === 1);
    const across = a.duplicates.filter((d) => d.classes.length > 1);
    lines.push(`  identical files: ${within.length} group${within.length === 1 ? '' : 's'} within a class, ${across.length} across classes (label conflicts)`);
    for (const d of a.duplicates.slice(0, 20)) lines.push(`    ${d.paths.map(rel).join(' = ')}${d.classes.length > 1 ? `  (classes ${d.classes.join(', ')})` : ''}${d.splits.length > 1 ? `  (splits ${d.splits.join(', ')})` : ''}`);
    if (a.duplicates.length > 20) lines.push(`    and ${a.duplicates.length - 20} more groups`);
    if (a.decoded) {
      const n = a.decoded.nearDuplicates;
      lines.push(`  near-duplicates: ${n.length} pair${n.length === 1 ? '' : 's'} (${a.decoded.nearCrossSplit} across splits, ${n.filter((x) => x.classes.length > 1).length} with different labels)`);
      for (const x of n.slice(0, 20)) lines.push(`    ${rel(x.paths[0])} ~ ${rel(x.paths[1])}  (distance ${x.distance}${x.splits.length > 1 ? `; splits ${x.splits.join(', ')}` : ''}${x.classes.length > 1 ? `; classes ${x.classes.join(', ')}` : ''})`);
      if (n.length > 20) lines.push(`    and ${n.length - 20} more pairs`);
      lines.push(`  smaller than the input ${a.decoded.inputSize.join('x')}: ${a.decoded.small.length}`);
    }
    lines.push(`  class imbalance: largest '${a.imbalance.largest.name}' ${a.imbalance.largest.images}, smallest '${a.imbalance.smallest.name}' ${a.imbalance.smallest.images} (${a.imbalance.ratio === Infinity ? '∞' : a.imbalance.ratio.toFixed(1)}x)`);
  }
  lines.push(`  skipped files: ${c.skipped.length}`);
  for (const s of c.skipped) lines.push(`    ${rel(s.path)}: ${s.reason}`);
  for (const w of c.warnings) lines.push(`warning: ${w}`);
  for (const b of c.blocking) lines.push(`problem: ${b}`);
  if (!c.trainable) lines.push(`not trainable: ${c.error}`);
  else lines.push(`trainable${c.blocking.length ? ' (train stops on the problems above unless given --force)' : ''}; checked in ${c.seconds.toFixed(1)}s`);
  return lines;
}
