/**
 * The dataset audit, shared by `tlearn check` and `tlearn train`: the image formats found (naming the files of
 * rare formats, such as ants/bees' one GIF placeholder), files whose content does not match their extension,
 * files with identical content — within a class, across classes (conflicting labels), or across the
 * train/val/test splits (leakage that inflates test accuracy) — and class imbalance. With `decode` (what
 * `tlearn check` does), every image is also decoded small once (probe.ts, remembered by content): files that
 * cannot be decoded, near-duplicates (perceptual hash) and images smaller than the model's input.
 */
import path from 'node:path';
import { mapConcurrent } from '../util/concurrency.js';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import type { ContentHashIndex } from './hash-index.js';
import { ImageDecodeError } from '../image/decode.js';
import type { ImageFolder, LabelledImage, SkippedFile } from './discover.js';
import { formatOfExtension, readFileHead, sniffImageFormat } from '../image/formats.js';
import { colourDistance, nearPairs, probeImage, type ImageProbe } from '../image/probe.js';
import type { ProbeCache } from '../image/probe-cache.js';
import type { DatasetSplit } from './split.js';
import { promises as fs } from 'node:fs';

export interface NearDuplicate {
  paths: [string, string];
  /** Bits in which their perceptual hashes differ (0..128; 0 = look the same at 9x9). */
  distance: number;
  classes: string[];
  splits: string[];
}

export interface DecodedAudit {
  /** Images that cannot be decoded, with the reason (training would skip them too). */
  unreadable: SkippedFile[];
  /** Pairs of different files that look alike. */
  nearDuplicates: NearDuplicate[];
  /** Near-duplicate pairs whose members are in different splits. */
  nearCrossSplit: number;
  /** Images smaller than the model's input (they are upscaled). */
  small: Array<{ path: string; width: number; height: number }>;
  inputSize: [number, number];
}

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
  /** The largest and the smallest class, and how many times larger the first is. */
  imbalance: { largest: { name: string; images: number }; smallest: { name: string; images: number }; ratio: number };
  /** Set when the images were decoded (`decode` option). */
  decoded?: DecodedAudit;
}

export interface AuditOptions {
  /** Decode every image small once: unreadable files, near-duplicates, small images. */
  decode?: boolean;
  /** Remembered probes by content hash (with `decode`). */
  probes?: ProbeCache;
  /** The model's input size (height, width), for the small-image check; default 224x224. */
  inputSize?: [number, number];
  /** Largest perceptual-hash distance of a near-duplicate pair (default 8 of 128 bits). */
  nearDistance?: number;
  /** Largest difference of mean colour (0..255, per cell of a 3x3 grid) of a near-duplicate pair (default 48). */
  colourDistance?: number;
  logger?: Logger;
}

const NEAR_COLOUR_DISTANCE = 48;

/** A class ratio this large or larger is worth a warning. */
export const IMBALANCE_WARNING = 3;

export function classImbalance(ds: ImageFolder): DatasetAudit['imbalance'] {
  const counts = ds.classes.map(() => 0);
  for (const im of ds.images) counts[im.label]!++;
  let big = 0;
  let small = 0;
  counts.forEach((c, i) => {
    if (c > counts[big]!) big = i;
    if (c < counts[small]!) small = i;
  });
  const largest = { name: ds.classes[big] ?? '', images: counts[big] ?? 0 };
  const smallest = { name: ds.classes[small] ?? '', images: counts[small] ?? 0 };
  return { largest, smallest, ratio: smallest.images ? largest.images / smallest.images : Infinity };
}

export async function auditDataset(ds: ImageFolder, split: DatasetSplit | undefined, hashes: ContentHashIndex, options: AuditOptions = {}): Promise<DatasetAudit> {
  const log = options.logger ?? silentLogger;
  const splitOf = new Map<string, string>();
  if (split) for (const [name, part] of [['train', split.train], ['val', split.val], ['test', split.test]] as Array<[string, LabelledImage[]]>) for (const im of part) splitOf.set(im.path, name);
  const formats: Record<string, number> = {};
  const byFile: Array<{ path: string; format: string }> = [];
  const extensionMismatches: DatasetAudit['extensionMismatches'] = [];
  const byHash = new Map<string, LabelledImage[]>();
  const probes: Array<ImageProbe | undefined> = new Array(ds.images.length);
  const contentOf: string[] = new Array(ds.images.length);
  const unreadable: SkippedFile[] = [];
  const progress = options.decode ? log.progress('checking images', ds.images.length) : undefined;
  await mapConcurrent(ds.images, 16, async (im, i) => {
    let fmt = 'unreadable';
    try {
      const { hash, bytes } = await hashes.hash(im.path);
      contentOf[i] = hash;
      fmt = ds.formats?.get(im.path) ?? sniffImageFormat(bytes ?? (await readFileHead(im.path))) ?? 'unknown';
      const list = byHash.get(hash) ?? [];
      list.push(im);
      byHash.set(hash, list);
      if (options.decode) {
        let outcome = options.probes?.get(hash);
        if (!outcome) {
          try {
            outcome = await probeImage(bytes ?? (await fs.readFile(im.path)), im.path);
          } catch (e) {
            outcome = { error: e instanceof ImageDecodeError ? e.reason : String(e) };
          }
          options.probes?.set(hash, outcome);
        }
        if ('error' in outcome) unreadable.push({ path: im.path, reason: outcome.error });
        else probes[i] = outcome;
      }
    } catch (e: any) {
      if (options.decode) unreadable.push({ path: im.path, reason: `cannot read file (${e.code ?? e.message})` });
    }
    progress?.tick();
    formats[fmt] = (formats[fmt] ?? 0) + 1;
    byFile.push({ path: im.path, format: fmt });
    const extFormat = formatOfExtension(im.path);
    if (extFormat && fmt !== 'unreadable' && fmt !== 'unknown' && extFormat !== fmt) extensionMismatches.push({ path: im.path, extension: path.extname(im.path).toLowerCase(), format: fmt });
  });
  progress?.done();
  await hashes.save();
  await options.probes?.save();
  const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  const rare = new Set(Object.entries(formats).filter(([, n]) => n < ds.images.length * 0.01).map(([f]) => f));
  const classesOf = (l: LabelledImage[]) => [...new Set(l.map((x) => ds.classes[x.label]!))].sort();
  const splitsOf = (l: LabelledImage[]) => [...new Set(l.map((x) => splitOf.get(x.path) ?? '?'))].sort();
  const duplicates = [...byHash.values()]
    .filter((l) => l.length > 1)
    .map((l) => ({ paths: l.map((x) => x.path).sort(), classes: classesOf(l), splits: splitsOf(l) }))
    .sort((a, b) => (a.paths[0]! < b.paths[0]! ? -1 : 1));
  const audit: DatasetAudit = {
    formats,
    rareFormats: byFile.filter((f) => rare.has(f.format)).sort(byPath),
    extensionMismatches: extensionMismatches.sort(byPath),
    duplicates,
    crossSplit: duplicates.filter((d) => d.splits.length > 1).length,
    conflictingLabels: duplicates.filter((d) => d.classes.length > 1).length,
    imbalance: classImbalance(ds),
  };
  if (options.decode) audit.decoded = decodedAudit(ds, probes, contentOf, unreadable.sort(byPath), splitOf, options);
  return audit;
}

function decodedAudit(ds: ImageFolder, probes: Array<ImageProbe | undefined>, contentOf: string[], unreadable: SkippedFile[], splitOf: Map<string, string>, o: AuditOptions): DecodedAudit {
  const inputSize = o.inputSize ?? [224, 224];
  // one representative per distinct content (identical files are reported as duplicates already)
  const reps: number[] = [];
  const seenContent = new Set<string>();
  probes.forEach((p, i) => {
    if (!p || p.flat || seenContent.has(contentOf[i]!)) return;
    seenContent.add(contentOf[i]!);
    reps.push(i);
  });
  const pairs = nearPairs(
    reps.map((i) => probes[i]!.dhash),
    o.nearDistance ?? 8,
  );
  const nearDuplicates: NearDuplicate[] = [];
  for (const [a, b, distance] of pairs) {
    if (colourDistance(probes[reps[a]!]!.colour, probes[reps[b]!]!.colour) > (o.colourDistance ?? NEAR_COLOUR_DISTANCE)) continue;
    const x = ds.images[reps[a]!]!;
    const y = ds.images[reps[b]!]!;
    const ordered = [x, y].sort(byPathOf);
    nearDuplicates.push({
      paths: [ordered[0]!.path, ordered[1]!.path],
      distance,
      classes: [...new Set([ds.classes[x.label]!, ds.classes[y.label]!])].sort(),
      splits: [...new Set([splitOf.get(x.path) ?? '?', splitOf.get(y.path) ?? '?'])].sort(),
    });
  }
  nearDuplicates.sort((a, b) => (a.paths[0] < b.paths[0] ? -1 : a.paths[0] > b.paths[0] ? 1 : a.paths[1] < b.paths[1] ? -1 : 1));
  const small = probes
    .map((p, i) => (p && (p.width < inputSize[1] || p.height < inputSize[0]) ? { path: ds.images[i]!.path, width: p.width, height: p.height } : undefined))
    .filter((x): x is { path: string; width: number; height: number } => Boolean(x))
    .sort((a, b) => (a.path < b.path ? -1 : 1));
  return { unreadable, nearDuplicates, nearCrossSplit: nearDuplicates.filter((d) => d.splits.length > 1).length, small, inputSize };
}

const byPathOf = (a: LabelledImage, b: LabelledImage) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** At most 8 items, then "and N more". */
export function listSome(items: string[], n = 8): string {
  return items.length > n ? `${items.slice(0, n).join(', ')} and ${items.length - n} more` : items.join(', ');
}

export function formatAudit(a: DatasetAudit, root: string): string[] {
  const rel = (p: string) => path.relative(root, p);
  const lines = [`  formats: ${Object.entries(a.formats).sort((x, y) => y[1] - x[1]).map(([f, n]) => `${n} ${f}`).join(', ')}`];
  if (a.rareFormats.length) lines.push(`  rare formats: ${listSome(a.rareFormats.map((f) => `${rel(f.path)} (${f.format})`))}`);
  if (a.extensionMismatches.length) lines.push(`  content does not match the extension: ${listSome(a.extensionMismatches.map((m) => `${rel(m.path)} (${m.format})`))}`);
  if (a.duplicates.length) {
    lines.push(
      `  identical files: ${a.duplicates.length} group${a.duplicates.length > 1 ? 's' : ''} (${a.crossSplit} across splits, ${a.conflictingLabels} with different labels): ${listSome(a.duplicates.map((d) => d.paths.map(rel).join(' = ')))}`,
    );
  } else lines.push('  identical files: none');
  return lines;
}
