/**
 * Training without listed images (`tlearn train --exclude-files <list>`, `--drop-label-issues`): the files are
 * taken out of the training and validation splits after the split is made, so the test split stays exactly the
 * split it would have been (a listed test image is kept and counted). The list is the CSV `tlearn check --labels
 * --csv` writes (a header with a `file` column; `given`, `suggested`, `score`, `kind` are kept for the report), or
 * plain text with one path per line; paths are relative to the dataset folder (or absolute).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ImageFolder, LabelledImage } from '../data/discover.js';
import type { DatasetSplit } from '../data/split.js';
import { DatasetError } from '../data/discover.js';

export interface ExcludeEntry {
  file: string;
  given?: string;
  suggested?: string;
  score?: number;
  kind?: string;
}

export interface ExcludedImage extends ExcludeEntry {
  /** Absolute path. */
  path: string;
  split: 'train' | 'val' | 'test';
}

export interface Exclusion {
  /** Where the list came from: the file, or 'check --labels' for --drop-label-issues. */
  source: string;
  reason: string;
  listed: number;
  /** Left out of training and validation. */
  excluded: ExcludedImage[];
  /** Listed but in the test split: kept there. */
  keptInTest: ExcludedImage[];
  /** Listed files that are not images of the dataset (paths as listed). */
  notFound: string[];
}

/** Splits one CSV line (RFC 4180 quoting). */
function csvFields(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** Reads an exclude list: the CSV of `check --labels --csv`, or one path per line. */
export async function readExcludeList(file: string): Promise<ExcludeEntry[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new DatasetError(`--exclude-files ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.startsWith('#'));
  if (!lines.length) return [];
  const head = csvFields(lines[0]!).map((h) => h.trim().toLowerCase());
  if (!head.includes('file')) return lines.map((l) => ({ file: l.trim() }));
  const col = (name: string) => head.indexOf(name);
  return lines.slice(1).map((l, n) => {
    const f = csvFields(l);
    const get = (name: string) => (col(name) >= 0 ? f[col(name)] : undefined);
    const file = get('file');
    if (!file) throw new DatasetError(`--exclude-files ${file}: line ${n + 2} has no file`);
    const score = get('score');
    return { file, given: get('given'), suggested: get('suggested'), score: score ? Number(score) : undefined, kind: get('kind') };
  });
}

/** Takes the listed images out of train and val; the test split is left as it is. */
export function excludeFromSplit(ds: ImageFolder, split: DatasetSplit, entries: ExcludeEntry[], source: string, reason: string): { split: DatasetSplit; exclusion: Exclusion } {
  const key = (p: string) => path.relative(ds.root, path.resolve(ds.root, p)).split(path.sep).join('/');
  const wanted = new Map(entries.map((e) => [key(e.file), e]));
  const where = new Map<string, 'train' | 'val' | 'test'>();
  for (const s of ['train', 'val', 'test'] as const) for (const im of split[s]) where.set(key(im.path), s);
  const excluded: ExcludedImage[] = [];
  const keptInTest: ExcludedImage[] = [];
  const notFound: string[] = [];
  for (const [k, e] of wanted) {
    const s = where.get(k);
    if (!s) notFound.push(e.file);
    else (s === 'test' ? keptInTest : excluded).push({ ...e, path: path.join(ds.root, k), split: s });
  }
  const out = new Set(excluded.map((e) => key(e.path)));
  const keep = (l: LabelledImage[]) => l.filter((im) => !out.has(key(im.path)));
  const next = { ...split, train: keep(split.train), val: keep(split.val) };
  return { split: next, exclusion: { source, reason, listed: wanted.size, excluded, keptInTest, notFound } };
}

/** One line for the log and the report: how many were left out, and why. */
export function describeExclusion(x: Exclusion): string {
  const tr = x.excluded.filter((e) => e.split === 'train').length;
  const va = x.excluded.length - tr;
  return `${x.excluded.length} image${x.excluded.length === 1 ? '' : 's'} left out (${tr} train, ${va} val): ${x.reason}${x.keptInTest.length ? `; ${x.keptInTest.length} listed test image${x.keptInTest.length === 1 ? ' stays' : 's stay'} in the test split (it is never changed)` : ''}${x.notFound.length ? `; ${x.notFound.length} listed file${x.notFound.length === 1 ? ' is' : 's are'} not in the dataset` : ''}`;
}
