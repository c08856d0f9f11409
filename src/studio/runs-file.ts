/**
 * The project's run history: <state dir>/runs.json, a JSON array of runs, written atomically (a reader sees the
 * old list or the new one, never half), one write at a time. Each run's folder is <state dir>/runs/<id>/ (a
 * `tlearn train` run folder, usable with the CLI: `tlearn predict`, `tlearn serve`, `tlearn train --resume`).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/fs.js';

export type RunStatus = 'running' | 'done' | 'failed' | 'cancelled' | 'stopped';

export interface RunEntry {
  id: string;
  outDir: string;
  mode: 'transfer' | 'finetune';
  backbone: string;
  epochs?: number;
  augment: boolean;
  startedAt: string;
  endedAt?: string;
  status: RunStatus;
  testAccuracy?: number;
  valAccuracy?: number;
  /** Why it failed, in words for the page. */
  error?: string;
  /** The studio process that runs it (while 'running'). */
  pid?: number;
  /** When it was resumed, if it was. */
  resumedAt?: string[];
  /** Images in the project when it started. */
  images?: number;
}

export const RUNS_FILE = 'runs.json';

export class RunsFile {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly stateDir: string) {}

  get file(): string {
    return path.join(this.stateDir, RUNS_FILE);
  }

  runDir(id: string): string {
    return path.join(this.stateDir, 'runs', id);
  }

  async read(): Promise<RunEntry[]> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (e: any) {
      if (e.code === 'ENOENT') return [];
      throw e;
    }
    try {
      const list = JSON.parse(text);
      return Array.isArray(list) ? list : [];
    } catch {
      // keep the unreadable file for a person to look at, start a new list
      await fs.rename(this.file, `${this.file}.unreadable-${Date.now()}`).catch(() => {});
      return [];
    }
  }

  /** Writes the list; writes are queued so the last call's list is the one on disk. */
  write(list: RunEntry[]): Promise<void> {
    const text = JSON.stringify(list, null, 2);
    const next = this.chain.then(() => writeFileAtomic(this.file, text));
    this.chain = next.catch(() => {});
    return next;
  }
}
