/**
 * A quick audit of a dataset's files, reported with the summary: the image formats found (naming the files
 * of rare formats, such as ants/bees' one GIF placeholder), files whose content does not match their extension,
 * and files with identical content — within a class, across classes (conflicting labels), or across the
 * train/val/test splits (leakage that inflates test accuracy).
 */
import path from 'node:path';
import type { ContentHashIndex } from './hash-index.js';
import type { ImageFolder, LabelledImage } from './discover.js';
import { readFileHead, sniffImageFormat } from './formats.js';
import type { DatasetSplit } from './split.js';

export interface DatasetAudit {
  /** format → count */
  formats: Record<string, number>;
  /** Files of formats that make up less than 1% of the dataset. */
  rareFormats: Array<{ path: string; format: string }>;
  extensionMismatches: Array<{ path: string; extension: string; format: string }>;
  /** Groups of files with identical content (two or more). */
  duplicates: Array<{ paths: string[]; classes: string[]; splits: string[] }>;
  /** Duplicate groups whose members are in different splits. */
  crossSplit: number;
  /** Duplicate groups whose members have different labels. */
  conflictingLabels: number;
}

const EXT_FORMAT: Record<string, string> = { '.jpg': 'jpeg', '.jpeg': 'jpeg', '.png': 'png', '.gif': 'gif', '.webp': 'webp', '.bmp': 'bmp', '.tif': 'tiff', '.tiff': 'tiff' };

export async function auditDataset(ds: ImageFolder, split: DatasetSplit | undefined, hashes: ContentHashIndex): Promise<DatasetAudit> {
  const splitOf = new Map<string, string>();
  if (split) for (const [name, part] of [['train', split.train], ['val', split.val], ['test', split.test]] as Array<[string, LabelledImage[]]>) for (const im of part) splitOf.set(im.path, name);
  const formats: Record<string, number> = {};
  const byFile: Array<{ path: string; format: string }> = [];
  const extensionMismatches: DatasetAudit['extensionMismatches'] = [];
  const byHash = new Map<string, LabelledImage[]>();
  let i = 0;
  const worker = async () => {
    while (i < ds.images.length) {
      const im = ds.images[i++]!;
      let fmt = 'unreadable';
      try {
        fmt = sniffImageFormat(await readFileHead(im.path)) ?? 'unknown';
        const { hash } = await hashes.hash(im.path);
        const list = byHash.get(hash) ?? [];
        list.push(im);
        byHash.set(hash, list);
      } catch {
        /* unreadable files are reported by decoding */
      }
      formats[fmt] = (formats[fmt] ?? 0) + 1;
      byFile.push({ path: im.path, format: fmt });
      const ext = path.extname(im.path).toLowerCase();
      if (EXT_FORMAT[ext] && fmt !== 'unreadable' && fmt !== 'unknown' && EXT_FORMAT[ext] !== fmt) extensionMismatches.push({ path: im.path, extension: ext, format: fmt });
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  await hashes.save();
  const rare = new Set(Object.entries(formats).filter(([, n]) => n < ds.images.length * 0.01).map(([f]) => f));
  const duplicates = [...byHash.values()]
    .filter((l) => l.length > 1)
    .map((l) => ({ paths: l.map((x) => x.path).sort(), classes: [...new Set(l.map((x) => ds.classes[x.label]!))], splits: [...new Set(l.map((x) => splitOf.get(x.path) ?? '?'))] }))
    .sort((a, b) => (a.paths[0]! < b.paths[0]! ? -1 : 1));
  return {
    formats,
    rareFormats: byFile.filter((f) => rare.has(f.format)).sort((a, b) => (a.path < b.path ? -1 : 1)),
    extensionMismatches: extensionMismatches.sort((a, b) => (a.path < b.path ? -1 : 1)),
    duplicates,
    crossSplit: duplicates.filter((d) => d.splits.length > 1).length,
    conflictingLabels: duplicates.filter((d) => d.classes.length > 1).length,
  };
}

export function formatAudit(a: DatasetAudit, root: string): string[] {
  const rel = (p: string) => path.relative(root, p);
  const lines = [`  formats: ${Object.entries(a.formats).sort((x, y) => y[1] - x[1]).map(([f, n]) => `${n} ${f}`).join(', ')}`];
  const list = (items: string[]) => (items.length > 8 ? `${items.slice(0, 8).join(', ')} and ${items.length - 8} more` : items.join(', '));
  if (a.rareFormats.length) lines.push(`  rare formats: ${list(a.rareFormats.map((f) => `${rel(f.path)} (${f.format})`))}`);
  if (a.extensionMismatches.length) lines.push(`  content does not match the extension: ${list(a.extensionMismatches.map((m) => `${rel(m.path)} (${m.format})`))}`);
  if (a.duplicates.length) {
    lines.push(
      `  identical files: ${a.duplicates.length} group${a.duplicates.length > 1 ? 's' : ''} (${a.crossSplit} across splits, ${a.conflictingLabels} with different labels): ${list(a.duplicates.map((d) => d.paths.map(rel).join(' = ')))}`,
    );
  } else lines.push('  identical files: none');
  return lines;
}
