/**
 * The backbones the Train page offers: the zoo networks installed in the model cache (what `tlearn models list`
 * shows as cached), with their size on disk and a speed from the estimate's model, plus local TF.js layers model
 * folders the studio was given (`--backbone <folder>`, or TLEARN_STUDIO_BACKBONE for tests and offline set-ups).
 * The default backbone is offered even when not installed: training downloads it on first use.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { zooStatus } from '../backbones/model-cache.js';
import { DEFAULT_BACKBONE, findZooEntry } from '../backbones/zoo.js';
import { extractionRate } from './estimate.js';

export interface OfferedBackbone {
  /** What trainFromFolder's `backbone` gets: a zoo name or a folder. */
  id: string;
  /** A short name for the page. */
  name: string;
  description: string;
  installed: boolean;
  /** Size on disk (bytes), when installed. */
  bytes: number;
  /** Photos per second when reading them the first time (an estimate). */
  imagesPerSecond: number;
  /** Plain-word speed: 'fastest', 'fast', 'slow', 'very slow'. */
  speed: string;
}

function speedWord(rate: number): string {
  if (rate >= 250) return 'fastest';
  if (rate >= 120) return 'fast';
  if (rate >= 30) return 'slow';
  return 'very slow';
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await folderBytes(p);
    else if (e.isFile()) total += (await fs.stat(p)).size;
  }
  return total;
}

/** Local backbone folders from TLEARN_STUDIO_BACKBONE (one path, or several separated by the path delimiter). */
export function envBackbones(): string[] {
  const v = process.env.TLEARN_STUDIO_BACKBONE;
  return v ? v.split(path.delimiter).filter(Boolean).map((p) => path.resolve(p)) : [];
}

export async function offeredBackbones(local: string[] = []): Promise<{ backbones: OfferedBackbone[]; default: string }> {
  const out: OfferedBackbone[] = [];
  for (const dir of [...local.map((p) => path.resolve(p)), ...envBackbones()]) {
    if (out.some((b) => b.id === dir) || !existsSync(path.join(dir, 'model.json'))) continue;
    const rate = extractionRate(dir);
    out.push({ id: dir, name: path.basename(dir), description: `a model folder on this computer (${dir})`, installed: true, bytes: await folderBytes(dir), imagesPerSecond: Math.round(rate), speed: 'unknown' });
  }
  for (const s of await zooStatus()) {
    if (!s.cached && s.entry.name !== DEFAULT_BACKBONE) continue;
    const rate = extractionRate(s.entry.name);
    out.push({
      id: s.entry.name,
      name: s.entry.name,
      description: s.cached ? s.entry.description : `${s.entry.description}; not installed yet: downloaded when training starts (needs the internet)`,
      installed: s.cached,
      bytes: s.bytes,
      imagesPerSecond: Math.round(rate),
      speed: speedWord(rate),
    });
  }
  const installedDefault = out.find((b) => b.id === DEFAULT_BACKBONE && b.installed);
  const def = local.length || envBackbones().length ? out[0]!.id : installedDefault ? DEFAULT_BACKBONE : (out.find((b) => b.installed)?.id ?? DEFAULT_BACKBONE);
  return { backbones: out, default: def };
}

/** True when `id` is one of the offered backbones (the page cannot name an arbitrary folder). */
export function isOffered(id: string, offered: OfferedBackbone[]): boolean {
  return offered.some((b) => b.id === id) || (findZooEntry(id) !== undefined && offered.some((b) => b.id === findZooEntry(id)!.name));
}
