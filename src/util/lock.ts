/**
 * A folder lock for run folders: one process writes a run folder at a time (two `tlearn train --out x` at once,
 * or a `--resume` of a run that is still going, are refused with who holds it). The lock is a file created
 * exclusively; a lock left by a process that is gone (killed) is taken over.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pidAlive } from './tempfiles.js';

export const LOCK_FILE = '.tlearn-lock';

export class LockError extends Error {}

interface Holder {
  pid: number;
  host: string;
  startedAt: string;
  what: string;
}

/** Locks `dir` (created if needed) for this process; returns the release function. */
export async function lockFolder(dir: string, what: string): Promise<() => Promise<void>> {
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, LOCK_FILE);
  const me: Holder = { pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString(), what };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fs.writeFile(file, JSON.stringify(me), { flag: 'wx' });
      return async () => {
        await fs.rm(file, { force: true });
      };
    } catch (e: any) {
      if (e.code !== 'EEXIST') throw e;
    }
    let holder: Holder | undefined;
    try {
      holder = JSON.parse(await fs.readFile(file, 'utf8'));
    } catch {
      holder = undefined; // being written, or garbage
    }
    const stale = holder ? holder.host === me.host && !pidAlive(holder.pid) : attempt > 0;
    if (holder && !stale) {
      throw new LockError(`${dir} is in use by ${holder.what} (process ${holder.pid}${holder.host !== me.host ? ` on ${holder.host}` : ''}, started ${holder.startedAt}); wait for it to finish, or stop it (if no such process is running, delete ${file})`);
    }
    if (stale) await fs.rm(file, { force: true });
    else await new Promise((r) => setTimeout(r, 100));
  }
  throw new LockError(`cannot lock ${dir}: ${file} keeps changing`);
}
