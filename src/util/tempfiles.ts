/**
 * Temporary files and folders: every one tlearn writes (atomic writes, downloads, staging folders) is named
 * `<target>.tlearn-tmp-<pid>-<host>-<random>`, so a sweeper can tell a dead writer's leftovers from a live
 * writer's work: same host and the process is gone → stale; older than a day → stale whatever wrote it (a
 * reused pid, another machine sharing the folder). Nothing ever reads a temporary name as data.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sha256 } from './hash.js';

const HOST = sha256(os.hostname()).slice(0, 8);
const TEMP = /\.tlearn-tmp-(\d+)-([0-9a-f]{8})-[0-9a-f]{8}$/;
/** Names older tlearn versions used: `<file>.<pid>.<hex>.tmp`, `<file>.<pid>.download`, `<dir>.staging-<pid>`. */
const LEGACY = [/\.(\d+)\.[0-9a-f]{8}\.tmp$/, /\.(\d+)\.download$/, /\.staging-(\d+)$/];
/** A temporary name this old is stale whoever wrote it (no writer of tlearn's takes that long). */
export const STALE_AFTER_MS = 24 * 3600 * 1000;

/** A fresh temporary path next to `target` (same folder, so a rename into place is atomic). */
export function tempPath(target: string): string {
  return `${target}.tlearn-tmp-${process.pid}-${HOST}-${randomBytes(4).toString('hex')}`;
}

export interface TempWriter {
  pid: number;
  /** The writer ran on this machine (so its pid can be checked). */
  sameHost: boolean;
}

/** The writer of a temporary name, or undefined when `name` is not one. */
export function parseTempName(name: string): TempWriter | undefined {
  const m = TEMP.exec(name);
  if (m) return { pid: Number(m[1]), sameHost: m[2] === HOST };
  for (const re of LEGACY) {
    const l = re.exec(name);
    if (l) return { pid: Number(l[1]), sameHost: true };
  }
  return undefined;
}

/** Whether process `pid` is alive on this machine. */
export function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e: any) {
    return e.code === 'EPERM';
  }
}

export interface TempEntry {
  path: string;
  bytes: number;
  /** Left by a process that is gone (or too old to belong to a live one). */
  stale: boolean;
}

async function sizeOf(p: string, st: { isDirectory(): boolean; size: number }): Promise<number> {
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const e of await fs.readdir(p, { withFileTypes: true }).catch(() => [])) {
    const full = path.join(p, e.name);
    const s = await fs.lstat(full).catch(() => undefined);
    if (s) total += await sizeOf(full, s);
  }
  return total;
}

/** Every temporary file or folder under `root`, down to `maxDepth` folders (symbolic links are not followed). */
export async function findTempFiles(root: string, maxDepth = Infinity, now = Date.now()): Promise<TempEntry[]> {
  const out: TempEntry[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    const list = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of list) {
      const full = path.join(dir, e.name);
      const writer = parseTempName(e.name);
      if (writer) {
        const st = await fs.lstat(full).catch(() => undefined);
        if (!st) continue;
        const old = now - st.mtimeMs > STALE_AFTER_MS;
        out.push({ path: full, bytes: await sizeOf(full, st), stale: old || (writer.sameHost && !pidAlive(writer.pid)) });
      } else if (e.isDirectory() && depth < maxDepth) await walk(full, depth + 1);
    }
  };
  await walk(root, 0);
  return out.sort((a, b) => (a.path < b.path ? -1 : 1));
}

/** Removes the stale temporary files under `root` (down to `maxDepth` folders); returns what was removed. */
export async function sweepTempFiles(root: string, maxDepth = Infinity): Promise<TempEntry[]> {
  const removed: TempEntry[] = [];
  for (const t of await findTempFiles(root, maxDepth)) {
    if (!t.stale) continue;
    await fs.rm(t.path, { recursive: true, force: true });
    removed.push(t);
  }
  return removed;
}
