/** The dataset summary printed before training: classes, images per class, split sizes, skipped files. */
import type { ImageFolder, SkippedFile } from './discover.js';
import type { DatasetSplit } from './split.js';

export interface DatasetSummary {
  root: string;
  classes: number;
  images: number;
  perClass: { min: number; median: number; max: number; minClass: string; maxClass: string };
  split?: { train: number; val: number; test: number; note: string };
  skipped: number;
  excluded: string[];
}

export function median(xs: number[]): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function summarizeDataset(ds: ImageFolder, split?: DatasetSplit, extraSkipped: SkippedFile[] = []): DatasetSummary {
  const counts = ds.classes.map(() => 0);
  for (const im of ds.images) counts[im.label]!++;
  let minI = 0;
  let maxI = 0;
  counts.forEach((c, i) => {
    if (c < counts[minI]!) minI = i;
    if (c > counts[maxI]!) maxI = i;
  });
  return {
    root: ds.root,
    classes: ds.classes.length,
    images: ds.images.length - extraSkipped.length,
    perClass: { min: counts[minI] ?? 0, median: median(counts), max: counts[maxI] ?? 0, minClass: ds.classes[minI] ?? '', maxClass: ds.classes[maxI] ?? '' },
    split: split && { train: split.train.length, val: split.val.length, test: split.test.length, note: split.note },
    skipped: ds.skipped.length + extraSkipped.length,
    excluded: ds.excluded,
  };
}

export function formatSummary(s: DatasetSummary): string[] {
  const lines = [
    `dataset: ${s.root}`,
    `  ${s.classes} classes, ${s.images} images` + (s.excluded.length ? ` (excluded: ${s.excluded.join(', ')})` : ''),
    `  images per class: min ${s.perClass.min} (${s.perClass.minClass}), median ${s.perClass.median}, max ${s.perClass.max} (${s.perClass.maxClass})`,
  ];
  if (s.split) lines.push(`  split: train ${s.split.train}, val ${s.split.val}, test ${s.split.test} — ${s.split.note}`);
  lines.push(`  skipped files: ${s.skipped}`);
  return lines;
}
