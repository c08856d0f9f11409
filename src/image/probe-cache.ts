/**
 * Probes (probe.ts) remembered by image content hash, so checking a dataset again decodes only new images.
 * One JSON file, rewritten atomically; entries of a different tlearn version are not trusted (the reasons and
 * hashes may have changed), and two processes saving at once each write a whole file (the later one wins).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/fs.js';
import { tlearnHome } from '../util/home.js';
import { VERSION } from '../version.js';
import type { ImageProbe } from './probe.js';

export type ProbeOutcome = ImageProbe | { error: string };

export function probeCacheFile(): string {
  return path.join(tlearnHome(), 'checks', 'probes.json');
}

export class ProbeCache {
  private entries = new Map<string, ProbeOutcome>();
  private dirty = false;

  private constructor(readonly file: string) {}

  static async open(file = probeCacheFile()): Promise<ProbeCache> {
    const c = new ProbeCache(file);
    try {
      const obj = JSON.parse(await fs.readFile(file, 'utf8'));
      if (obj?.version === VERSION && obj.entries && typeof obj.entries === 'object') c.entries = new Map(Object.entries(obj.entries));
    } catch {
      /* missing or unreadable: start empty */
    }
    return c;
  }

  get(contentHash: string): ProbeOutcome | undefined {
    return this.entries.get(contentHash);
  }

  set(contentHash: string, outcome: ProbeOutcome): void {
    this.entries.set(contentHash, outcome);
    this.dirty = true;
  }

  async save(): Promise<void> {
    if (!this.dirty) return;
    await writeFileAtomic(this.file, JSON.stringify({ version: VERSION, entries: Object.fromEntries(this.entries) }));
    this.dirty = false;
  }
}
