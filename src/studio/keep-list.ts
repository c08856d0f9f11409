/**
 * Photos the user kept as labelled on the Review page ("this label is right"): remembered in the project's state
 * folder (keep.json: {"<class>/<file>": {at}}) so the label-issue finder does not flag them again. The class is
 * part of the name: a photo moved to another class may be flagged again.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/fs.js';
import { STATE_FILES } from './context.js';

export type KeptLabels = Record<string, { at: string }>;

const queues = new Map<string, Promise<unknown>>();

export class KeepList {
  constructor(readonly stateDir: string) {}

  get file(): string {
    return path.join(this.stateDir, STATE_FILES.keep);
  }

  async read(): Promise<KeptLabels> {
    try {
      const o = JSON.parse(await fs.readFile(this.file, 'utf8'));
      return o && typeof o === 'object' && !Array.isArray(o) ? o : {};
    } catch {
      return {};
    }
  }

  /** Adds photos ("class/file"), one write at a time per project; returns the whole list. */
  add(images: string[]): Promise<KeptLabels> {
    const prev = queues.get(this.file) ?? Promise.resolve();
    const next = prev.then(async () => {
      const kept = await this.read();
      const at = new Date().toISOString();
      for (const i of images) kept[i] ??= { at };
      await writeFileAtomic(this.file, JSON.stringify(kept, null, 2));
      return kept;
    });
    queues.set(this.file, next.catch(() => {}));
    return next;
  }
}
