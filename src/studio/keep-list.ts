/**
 * Photos the user kept as labelled on the Review page ("this label is right"): remembered in the project's state
 * folder (kept-labels.json) so the label-issue finder does not flag them again. An entry is a photo's path in the
 * project and the label it was kept with: moved to another class, it may be flagged again.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/fs.js';

export interface KeptLabel {
  path: string;
  label: string;
  at: string;
}

export const KEEP_FILE = 'kept-labels.json';

export class KeepList {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly stateDir: string) {}

  async read(): Promise<KeptLabel[]> {
    try {
      const list = JSON.parse(await fs.readFile(path.join(this.stateDir, KEEP_FILE), 'utf8'));
      return Array.isArray(list) ? list : [];
    } catch {
      return [];
    }
  }

  /** True when `path` was kept with `label`. */
  static has(list: KeptLabel[], p: string, label: string): boolean {
    return list.some((k) => k.path === p && k.label === label);
  }

  /** Adds entries (one write at a time); returns the whole list. */
  add(items: Array<{ path: string; label: string }>): Promise<KeptLabel[]> {
    const next = this.chain.then(async () => {
      const list = await this.read();
      const at = new Date().toISOString();
      for (const i of items) if (!KeepList.has(list, i.path, i.label)) list.push({ path: i.path, label: i.label, at });
      await writeFileAtomic(path.join(this.stateDir, KEEP_FILE), JSON.stringify(list, null, 2));
      return list;
    });
    this.chain = next.catch(() => {});
    return next;
  }
}
