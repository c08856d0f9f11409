/**
 * Finds the images of a dataset laid out as one folder per class (class = folder name, sorted), or as
 * `train/`, `val/` (or `valid/`, `validation/`) and optional `test/` folders that each hold class folders.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { hasImageExtension, readFileHead, sniffImageFormat } from './formats.js';

export interface LabelledImage {
  /** Absolute path. */
  path: string;
  /** Index into the dataset's classes. */
  label: number;
}

export interface SkippedFile {
  path: string;
  reason: string;
}

export type SplitName = 'train' | 'val' | 'test';

export interface ImageFolder {
  root: string;
  classes: string[];
  /** Every image found, in class then path order. */
  images: LabelledImage[];
  /** Set when the root holds train/ and val/ folders: the split the dataset came with. */
  predefined?: { train: LabelledImage[]; val: LabelledImage[]; test?: LabelledImage[] };
  /** Files seen but not used, with the reason (not an image, hidden, outside class folders...). */
  skipped: SkippedFile[];
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

async function entries(dir: string) {
  const list = await fs.readdir(dir, { withFileTypes: true });
  const out: Array<{ name: string; full: string; dir: boolean }> = [];
  for (const e of list) {
    const full = path.join(dir, e.name);
    let isDir = e.isDirectory();
    if (e.isSymbolicLink()) {
      try {
        isDir = (await fs.stat(full)).isDirectory();
      } catch {
        isDir = false;
      }
    }
    out.push({ name: e.name, full, dir: isDir });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** All image files under a class folder (recursively), recording everything else as skipped. */
async function imagesUnder(dir: string, skipped: SkippedFile[]): Promise<string[]> {
  const found: string[] = [];
  for (const e of await entries(dir)) {
    if (e.name.startsWith('.')) {
      skipped.push({ path: e.full, reason: e.dir ? 'hidden folder' : 'hidden file' });
    } else if (e.dir) {
      found.push(...(await imagesUnder(e.full, skipped)));
    } else if (hasImageExtension(e.name)) {
      found.push(e.full);
    } else if (path.extname(e.name) === '') {
      let fmt;
      try {
        fmt = sniffImageFormat(await readFileHead(e.full));
      } catch (err: any) {
        skipped.push({ path: e.full, reason: `unreadable: ${err.code ?? err.message}` });
        continue;
      }
      if (fmt) found.push(e.full);
      else skipped.push({ path: e.full, reason: 'no file extension and not a recognised image' });
    } else {
      skipped.push({ path: e.full, reason: `not an image file (extension ${path.extname(e.name)})` });
    }
  }
  return found;
}

/** Class folder name → image paths, for one folder of class folders. */
async function scanClassFolders(dir: string, skipped: SkippedFile[]): Promise<Map<string, string[]>> {
  const classes = new Map<string, string[]>();
  for (const e of await entries(dir)) {
    if (e.name.startsWith('.')) skipped.push({ path: e.full, reason: e.dir ? 'hidden folder' : 'hidden file' });
    else if (!e.dir) skipped.push({ path: e.full, reason: 'file outside any class folder' });
    else classes.set(e.name, await imagesUnder(e.full, skipped));
  }
  return classes;
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
  const skipped: SkippedFile[] = [];
  const images = await imagesUnder(dir, skipped);
  return { images, skipped };
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
  const skipped: SkippedFile[] = [];
  const warnings: string[] = [];
  const top = await entries(abs);
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
    const scanned = new Map<SplitName, Map<string, string[]>>();
    for (const [name, d] of splits) scanned.set(name, await scanClassFolders(path.join(abs, d), skipped));
    const allClasses = [...new Set([...scanned.values()].flatMap((m) => [...m.keys()]))].sort();
    const { kept, excluded } = applyExclude(allClasses, exclude, root);
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
      excluded,
      warnings,
    };
  }

  const scanned = await scanClassFolders(abs, skipped);
  const { kept, excluded } = applyExclude([...scanned.keys()], exclude, root);
  if (!scanned.size) throw new DatasetError(`${root} has no sub-folders; expected one folder per class (or train/ and val/ folders of class folders)`);
  const classes = kept.filter((c) => scanned.get(c)!.length > 0);
  for (const c of kept) if (!classes.includes(c)) warnings.push(`class folder '${c}' has no images; class dropped`);
  if (!classes.length) throw new DatasetError(`no images found under ${root}`);
  if (classes.length < 2) throw new DatasetError(`${root} has only one class with images ('${classes[0]}'); a classifier needs at least two`);
  const images = classes.flatMap((c, label) => scanned.get(c)!.map((p) => ({ path: p, label })));
  return { root: abs, classes, images, skipped, excluded, warnings };
}
