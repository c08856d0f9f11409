/**
 * A recorded split (split.json) read back: to resume a run on exactly the files it started with, and to say
 * what changed in the data when a run is repeated (`--from`).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { listSome } from './audit.js';
import { DatasetError, type ImageFolder, type LabelledImage } from './discover.js';
import type { DatasetSplit, SplitFile } from './split.js';

export async function readSplitFile(file: string): Promise<SplitFile> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (e: any) {
    throw new DatasetError(`cannot read the recorded split ${file} (${e.code ?? e.message})`);
  }
}

/** The recorded split over the dataset as found now; a DatasetError when its classes or files are gone. */
export function splitFromFile(f: SplitFile, ds: ImageFolder): DatasetSplit {
  if (JSON.stringify(f.classes) !== JSON.stringify(ds.classes)) {
    throw new DatasetError(`the classes in ${ds.root} changed since the run started (recorded: ${f.classes.join(', ')}; now: ${ds.classes.join(', ')}); resuming would not give the same model`);
  }
  const present = new Set(ds.images.map((i) => i.path));
  const missing: string[] = [];
  const part = (list: Array<[string, number]>): LabelledImage[] =>
    list.map(([rel, label]) => {
      const p = path.join(ds.root, rel);
      if (!present.has(p)) missing.push(rel);
      return { path: p, label };
    });
  const split: DatasetSplit = { train: part(f.train), val: part(f.val), test: part(f.test), mode: f.mode, seed: f.seed, fractions: f.fractions, note: f.note };
  if (missing.length) throw new DatasetError(`${missing.length} file${missing.length > 1 ? 's' : ''} of the recorded split ${missing.length > 1 ? 'are' : 'is'} no longer in ${ds.root} (${listSome(missing, 5)}); resuming would not give the same model`);
  return split;
}

/** What differs between a recorded split and a new one, in lines (none when the same). */
export function diffSplits(recorded: SplitFile, now: SplitFile): string[] {
  const lines: string[] = [];
  if (recorded.root !== now.root) lines.push(`dataset folder: ${recorded.root} then, ${now.root} now`);
  const added = now.classes.filter((c) => !recorded.classes.includes(c));
  const removed = recorded.classes.filter((c) => !now.classes.includes(c));
  if (added.length) lines.push(`classes added: ${listSome(added)}`);
  if (removed.length) lines.push(`classes removed: ${listSome(removed)}`);
  const where = (f: SplitFile) => {
    const m = new Map<string, string>();
    for (const name of ['train', 'val', 'test'] as const) for (const [rel, label] of f[name]) m.set(rel, `${name}:${f.classes[label]}`);
    return m;
  };
  const a = where(recorded);
  const b = where(now);
  const newFiles = [...b.keys()].filter((k) => !a.has(k));
  const goneFiles = [...a.keys()].filter((k) => !b.has(k));
  const moved = [...b.keys()].filter((k) => a.has(k) && a.get(k) !== b.get(k));
  if (newFiles.length) lines.push(`${newFiles.length} file${newFiles.length > 1 ? 's' : ''} added: ${listSome(newFiles, 5)}`);
  if (goneFiles.length) lines.push(`${goneFiles.length} file${goneFiles.length > 1 ? 's' : ''} removed: ${listSome(goneFiles, 5)}`);
  if (moved.length) lines.push(`${moved.length} file${moved.length > 1 ? 's' : ''} in another split or class than before: ${listSome(moved.map((k) => `${k} (${a.get(k)} → ${b.get(k)})`), 5)}`);
  if (recorded.seed !== now.seed || recorded.mode !== now.mode || JSON.stringify(recorded.fractions) !== JSON.stringify(now.fractions)) lines.push(`split: ${recorded.note} then, ${now.note} now`);
  return lines;
}
