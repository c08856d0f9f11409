import { promises as fs } from 'node:fs';
import path from 'node:path';
import { tempPath } from './tempfiles.js';

/**
 * Writes a file so that readers see either the old content or the whole new content, never a part: the data goes
 * to a temporary name (see tempfiles.ts; a killed writer's leftovers are swept later) and is renamed into place.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, opts: { durable?: boolean } = {}): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = tempPath(file);
  try {
    if (opts.durable) {
      // flushed to disk before the rename, so even a power cut leaves the old file or the whole new one
      const h = await fs.open(tmp, 'w');
      try {
        await h.writeFile(data);
        await h.sync();
      } finally {
        await h.close();
      }
    } else await fs.writeFile(tmp, data);
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

export async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Moves a finished staging folder to `dir`. When another process installed `dir` meanwhile and `keepExisting`
 * approves of it, that one is kept (readers of it are not disturbed); otherwise the old folder is first moved
 * aside under a temporary name, so `dir` is never missing or half-written.
 */
export async function installFolder(staging: string, dir: string, keepExisting: () => Promise<boolean>): Promise<void> {
  try {
    await fs.rename(staging, dir);
    return;
  } catch (e: any) {
    if (!['ENOTEMPTY', 'EEXIST', 'EISDIR', 'ENOTDIR'].includes(e.code)) throw e;
  }
  if (await keepExisting()) {
    await fs.rm(staging, { recursive: true, force: true });
    return;
  }
  const aside = tempPath(dir);
  await fs.rename(dir, aside);
  await fs.rename(staging, dir);
  await fs.rm(aside, { recursive: true, force: true });
}

/** True when a process with this id is running (for lock files and staging folders left by killed processes). */
export { pidAlive } from './tempfiles.js';
