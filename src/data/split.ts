/** Seeded train/validation/test splits: stratified per class (default) or a plain shuffle (the notebook's). */
import path from 'node:path';
import { Rng } from '../util/rng.js';
import { DatasetError, type ImageFolder, type LabelledImage } from './discover.js';

export type SplitMode = 'stratified' | 'random';

export interface SplitOptions {
  /** train, validation, test fractions; they must sum to 1. Default [0.7, 0.15, 0.15]. */
  fractions?: [number, number, number];
  seed?: number;
  mode?: SplitMode;
}

export interface DatasetSplit {
  train: LabelledImage[];
  val: LabelledImage[];
  test: LabelledImage[];
  mode: SplitMode | 'predefined';
  seed: number;
  fractions: [number, number, number];
  /** How the split was made, in words (e.g. for a pre-split dataset without test/). */
  note: string;
}

export const DEFAULT_FRACTIONS: [number, number, number] = [0.7, 0.15, 0.15];

/** Parses "0.7,0.15,0.15" (or percentages "70,15,15"). */
export function parseFractions(text: string): [number, number, number] {
  const parts = text.split(',').map((s) => Number(s.trim()));
  if (parts.length !== 3 || parts.some((p) => !Number.isFinite(p) || p < 0)) {
    throw new DatasetError(`--split expects three non-negative numbers train,val,test (e.g. 0.7,0.15,0.15), got '${text}'`);
  }
  const sum = parts[0]! + parts[1]! + parts[2]!;
  const scale = Math.abs(sum - 100) < 1e-6 ? 100 : 1;
  const f = parts.map((p) => p / scale) as [number, number, number];
  if (Math.abs(f[0] + f[1] + f[2] - 1) > 1e-6) throw new DatasetError(`--split fractions must sum to 1 (got ${sum})`);
  if (f[0] <= 0 || f[1] <= 0 || f[2] <= 0) throw new DatasetError('--split needs a non-zero train, validation and test fraction');
  return f;
}

/**
 * Sizes of the three parts for n items: floors of the exact shares, the remainder going to the largest
 * fractional parts (ties broken by the seeded generator, so neither val nor test is favoured).
 */
function cut(n: number, f: [number, number, number], rng: Rng): [number, number] {
  const exact = f.map((x) => x * n);
  const sizes = exact.map(Math.floor);
  let left = n - sizes.reduce((a, b) => a + b, 0);
  const order = rng.shuffle([0, 1, 2]).sort((a, b) => exact[b]! - sizes[b]! - (exact[a]! - sizes[a]!));
  for (const i of order) if (left > 0 && f[i]! > 0) {
    sizes[i]!++;
    left--;
  }
  if (sizes[0] === 0 && n > 0) {
    const from = sizes[2]! > 0 ? 2 : 1;
    sizes[from]!--;
    sizes[0] = 1;
  }
  return [sizes[0]!, sizes[0]! + sizes[1]!];
}

function stratified(images: LabelledImage[], f: [number, number, number], rng: Rng) {
  const byClass = new Map<number, LabelledImage[]>();
  for (const im of images) {
    const l = byClass.get(im.label) ?? [];
    l.push(im);
    byClass.set(im.label, l);
  }
  const out = { train: [] as LabelledImage[], val: [] as LabelledImage[], test: [] as LabelledImage[] };
  for (const label of [...byClass.keys()].sort((a, b) => a - b)) {
    const items = rng.shuffle([...byClass.get(label)!]);
    const [a, b] = cut(items.length, f, rng);
    out.train.push(...items.slice(0, a));
    out.val.push(...items.slice(a, b));
    out.test.push(...items.slice(b));
  }
  return out;
}

function shuffled(images: LabelledImage[], f: [number, number, number], rng: Rng) {
  const items = rng.shuffle([...images]);
  const a = Math.floor(f[0] * items.length);
  const b = Math.floor((f[0] + f[1]) * items.length);
  return { train: items.slice(0, a), val: items.slice(a, b), test: items.slice(b) };
}

/** Splits a dataset. A dataset that came with train/val[/test] folders keeps them. */
export function splitDataset(ds: ImageFolder, options: SplitOptions = {}): DatasetSplit {
  const fractions = options.fractions ?? DEFAULT_FRACTIONS;
  const seed = options.seed ?? 42;
  const mode = options.mode ?? 'stratified';
  const rng = new Rng(seed);
  const pre = ds.predefined;
  if (pre?.test) {
    return { ...pre, test: pre.test, mode: 'predefined', seed, fractions, note: 'train/, val/ and test/ folders used as given' };
  }
  if (pre) {
    const valShare = fractions[1] / (fractions[0] + fractions[1]);
    const carve: [number, number, number] = [1 - valShare, valShare, 0];
    const parts = mode === 'random' ? shuffled(pre.train, carve, rng) : stratified(pre.train, carve, rng);
    return {
      train: parts.train,
      val: [...parts.val, ...parts.test],
      test: pre.val,
      mode: 'predefined',
      seed,
      fractions,
      note: `no test/ folder: the given validation folder is held out as the test split, and ${(valShare * 100).toFixed(1)}% of train/ (seeded, ${mode}) is used for validation`,
    };
  }
  const parts = mode === 'random' ? shuffled(ds.images, fractions, rng) : stratified(ds.images, fractions, rng);
  return { ...parts, mode, seed, fractions, note: `${mode} split ${fractions.join('/')} with seed ${seed}` };
}

/** Throws a DatasetError when a part of the split is empty (nothing sensible can be trained or measured). */
export function assertSplitUsable(s: DatasetSplit, images: number): void {
  for (const [name, part] of Object.entries({ train: s.train, val: s.val, test: s.test })) {
    if (!part.length) throw new DatasetError(`the ${name} split is empty (${images} images); use a larger dataset or change --split`);
  }
}

export interface SplitFile {
  root: string;
  mode: DatasetSplit['mode'];
  seed: number;
  fractions: [number, number, number];
  note: string;
  classes: string[];
  counts: Record<'train' | 'val' | 'test', number>;
  /** [path relative to root, label index] */
  train: Array<[string, number]>;
  val: Array<[string, number]>;
  test: Array<[string, number]>;
}

export function splitToJson(ds: ImageFolder, s: DatasetSplit): SplitFile {
  const rel = (l: LabelledImage[]) => l.map((im) => [path.relative(ds.root, im.path), im.label] as [string, number]);
  return {
    root: ds.root,
    mode: s.mode,
    seed: s.seed,
    fractions: s.fractions,
    note: s.note,
    classes: ds.classes,
    counts: { train: s.train.length, val: s.val.length, test: s.test.length },
    train: rel(s.train),
    val: rel(s.val),
    test: rel(s.test),
  };
}
