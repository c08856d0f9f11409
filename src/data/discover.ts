/**
 * Finds the images of a dataset laid out as one folder per class (class = folder name, sorted), or as
 * `train/`, `val/` (or `valid/`, `validation/`) and optional `test/` folders that each hold class folders.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { comparePaths, FolderWalker, type SkippedFile } from './walk.js';
import type { ImageFormat } from '../image/formats.js';

export type { SkippedFile };

export interface LabelledImage {
  /** Absolute path. */
  path: string;
  /** Index into the dataset's classes. */
  label: number;
}

export type SplitName = 'train' | 'val' | 'test';

export interface ImageFolder {
  root: string;
  classes: string[];
  /** Every image found, in class then path order. */
  images: LabelledImage[];
  /** Set when the root holds train/ and val/ folders: the split the dataset came with. */
  predefined?: { train: LabelledImage[]; val: LabelledImage[]; test?: LabelledImage[] };
  /** Files seen but not used, with the reason (not an image, hidden, outside class folders, a link loop...). */
  skipped: SkippedFile[];
  /** Symbolic links that lead back into a folder being walked (also in `skipped`). */
  loops?: SkippedFile[];
  /** Each image's format, by content, as found when walking. */
  formats?: Map<string, ImageFormat>;
  /** Classes dropped by `exclude`. */
  excluded: string[];
  /** Things the user should know (e.g. an empty class folder). */
  warnings: string[];
}

export interface LoadImageFolderOptions {
  /** Class names to leave out (e.g. the notebook's BACKGROUND_Google, Motorbikes, ...). */
  exclude?: string[];
}

export class DatasetError extends Error {}

const VAL_NAMES = ['val', 'valid', 'validation'];

type Entry = { name: string; full: string; dir: boolean };

/** The class folders among a folder's entries; files there are skipped. */
function classFolders(entries: Entry[], skipped: SkippedFile[]): Entry[] {
  for (const e of entries) if (!e.dir) skipped.push({ path: e.full, reason: 'file outside any class folder' });
  return entries.filter((e) => e.dir);
}

/** Class name → image paths for the kept classes, links followed and each list in walk order. */
async function walkClasses(walker: FolderWalker, folders: Entry[][], keep: string[]): Promise<Array<Map<string, string[]>>> {
  const scans: Array<Map<string, string[]>> = [];
  for (const entries of folders) {
    const m = new Map<string, string[]>();
    for (const e of entries) {
      if (!keep.includes(e.name)) continue;
      const images: string[] = [];
      m.set(e.name, images);
      await walker.walk(e.full, images);
    }
    scans.push(m);
  }
  await walker.finish();
  for (const m of scans) for (const list of m.values()) list.sort(comparePaths);
  return scans;
}

function applyExclude(all: string[], exclude: string[], where: string): { kept: string[]; excluded: string[] } {
  const unknown = exclude.filter((c) => !all.includes(c));
  if (unknown.length) {
    throw new DatasetError(`--exclude names ${unknown.map((c) => `'${c}'`).join(', ')}, not a class in ${where} (classes: ${all.join(', ')})`);
  }
  return { kept: all.filter((c) => !exclude.includes(c)), excluded: exclude.filter((c) => all.includes(c)) };
}

/** Every image file under `dir` (recursively, sorted), and the files skipped with their reason. */
export async function findImages(dir: string): Promise<{ images: string[]; skipped: SkippedFile[] }> {
  const walker = new FolderWalker();
  const images: string[] = [];
  await walker.enter(dir);
  await walker.walk(dir, images);
  await walker.finish();
  return { images: images.sort(comparePaths), skipped: walker.skipped };
}

/** Discovers a labelled image dataset. */
export async function loadImageFolder(root: string, options: LoadImageFolderOptions = {}): Promise<ImageFolder> {
  const abs = path.resolve(root);
  let st;
  try {
    st = await fs.stat(abs);
  } catch {
    throw new DatasetError(`dataset folder ${root} does not exist`);
  }
  if (!st.isDirectory()) throw new DatasetError(`${root} is not a folder; expected a folder with one sub-folder per class`);
  const exclude = (options.exclude ?? []).map((s) => s.trim()).filter(Boolean);
  const walker = new FolderWalker();
  const { skipped, loops, formats } = walker;
  const warnings: string[] = [];
  await walker.enter(abs);
  const top = await walker.topLevel(abs).catch((e) => {
    throw new DatasetError(`cannot read dataset folder ${root} (${e.code ?? e.message})`);
  });
  const dirNames = top.filter((e) => e.dir).map((e) => e.name);
  const find = (names: string[]) => dirNames.find((d) => names.includes(d.toLowerCase()));
  const trainDir = find(['train']);
  const valDir = find(VAL_NAMES);
  const testDir = find(['test']);

  if (trainDir && valDir) {
    const splits: Array<[SplitName, string]> = [['train', trainDir], ['val', valDir]];
    if (testDir) splits.push(['test', testDir]);
    for (const e of top) {
      if (!splits.some(([, d]) => d === e.name)) skipped.push({ path: e.full, reason: 'not a train/val/test folder of a pre-split dataset' });
    }
    const folders: Entry[][] = [];
    for (const [, d] of splits) folders.push(classFolders(await walker.topLevel(path.join(abs, d)), skipped));
    const allClasses = [...new Set(folders.flat().map((e) => e.name))].sort();
    const { kept, excluded } = applyExclude(allClasses, exclude, root);
    const scans = await walkClasses(walker, folders, kept);
    const scanned = new Map(splits.map(([name], i) => [name, scans[i]!]));
    const classes = kept.filter((c) => [...scanned.values()].some((m) => (m.get(c)?.length ?? 0) > 0));
    for (const c of kept) if (!classes.includes(c)) warnings.push(`class folder '${c}' has no images; class dropped`);
    if (!classes.length) throw new DatasetError(`no images found under ${root}`);
    for (const c of classes) if (!scanned.get('train')!.get(c)?.length) warnings.push(`class '${c}' has no training images`);
    const lists = {} as Record<SplitName, LabelledImage[]>;
    for (const [name] of splits) {
      const m = scanned.get(name)!;
      lists[name] = classes.flatMap((c, label) => (m.get(c) ?? []).map((p) => ({ path: p, label })));
    }
    return {
      root: abs,
      classes,
      images: [...lists.train, ...lists.val, ...(lists.test ?? [])],
      predefined: { train: lists.train, val: lists.val, ...(testDir ? { test: lists.test } : {}) },
      skipped,
      loops,
      formats,
      excluded,
      warnings,
    };
  }

  const folders = classFolders(top, skipped);
  const { kept, excluded } = applyExclude(folders.map((e) => e.name), exclude, root);
  const [scanned] = (await walkClasses(walker, [folders], kept)) as [Map<string, string[]>];
  if (!folders.length) throw new DatasetError(`${root} has no sub-folders; expected one folder per class (or train/ and val/ folders of class folders)`);
  const classes = kept.filter((c) => scanned.get(c)!.length > 0);
  for (const c of kept) if (!classes.includes(c)) warnings.push(`class folder '${c}' has no images; class dropped`);
  if (!classes.length) throw new DatasetError(`no images found under ${root}`);
  if (classes.length < 2) throw new DatasetError(`${root} has only one class with images ('${classes[0]}'); a classifier needs at least two`);
  const images = classes.flatMap((c, label) => scanned.get(c)!.map((p) => ({ path: p, label })));
  return { root: abs, classes, images, skipped, loops, formats, excluded, warnings };
}
