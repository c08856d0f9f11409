/**
 * Walking image folders that may be hostile: every file and folder is used once, by its identity on disk
 * (device + inode), so a symbolic link loop (`bees/loop -> ..`) or a second path to the same place (a link to a
 * folder that is walked anyway, a hard link) is reported as skipped with its reason instead of being walked
 * again. Symbolic links are followed once, after every real entry, so the real path wins over a link to it;
 * dangling links, hidden files, pipes and devices, unreadable files and folders are skipped with their reason.
 * Whether a file is an image is decided by its content (formats.ts); the extension is only a hint.
 */
import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { mapConcurrent } from '../util/concurrency.js';
import { describeContent, formatOfExtension, readFileHead, sniffImageFormat, type ImageFormat } from '../image/formats.js';

export interface SkippedFile {
  path: string;
  reason: string;
}

interface PendingLink {
  path: string;
  into: string[];
}

/** Files stat'ed or sniffed at once. */
const IO_CONCURRENCY = 32;

const identity = (st: Stats) => `${st.dev}:${st.ino}`;

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a named pipe';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/** Compares paths segment by segment (the order of a depth-first walk over sorted names). */
export function comparePaths(a: string, b: string): number {
  const x = a.split(path.sep);
  const y = b.split(path.sep);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  }
  return x.length - y.length;
}

/** A regular file's image format by content, or why it is not an image. */
export async function classifyFile(file: string, size: number): Promise<{ format: ImageFormat } | { reason: string }> {
  if (size === 0) return { reason: 'empty file' };
  let head: Uint8Array;
  try {
    head = await readFileHead(file);
  } catch (e: any) {
    return { reason: `cannot read file (${e.code ?? e.message})` };
  }
  const format = sniffImageFormat(head);
  if (format) return { format };
  const ext = path.extname(file);
  const what = describeContent(head);
  if (formatOfExtension(file)) return { reason: `not an image: the content is ${what ?? 'not a format tlearn reads'} (named ${ext})` };
  if (!ext) return { reason: what ? `no file extension and not an image (${what})` : 'no file extension and not a recognised image' };
  return { reason: `not an image file (extension ${ext}${what && what !== 'text' ? `, ${what}` : ''})` };
}

/** Why a regular file is not an image, or undefined when its content is one. */
export async function nonImageReason(file: string, size: number): Promise<string | undefined> {
  const c = await classifyFile(file, size);
  return 'reason' in c ? c.reason : undefined;
}

export class FolderWalker {
  /** identity → the first path it was used by */
  private readonly seen = new Map<string, string>();
  private pending: PendingLink[] = [];
  readonly skipped: SkippedFile[] = [];
  /** Symbolic links that lead back into a folder being walked. */
  readonly loops: SkippedFile[] = [];
  /** The format (by content) of every image found. */
  readonly formats = new Map<string, ImageFormat>();

  private skip(p: string, reason: string): void {
    this.skipped.push({ path: p, reason });
  }

  /** Marks a file or folder as used; false (and a skip reason) when it already was, under another path. */
  private claim(p: string, st: Stats, via: string): boolean {
    const id = identity(st);
    const first = this.seen.get(id);
    if (first !== undefined) {
      this.skip(p, `${via} to ${first}, which is already used`);
      return false;
    }
    this.seen.set(id, p);
    return true;
  }

  /** Marks `dir` itself as walked (e.g. the dataset root), so links back to it are loops. */
  async enter(dir: string): Promise<void> {
    const st = await fs.stat(dir);
    this.seen.set(identity(st), dir);
  }

  /** Walks `dir` (already claimed or a root), pushing image paths into `into`; symbolic links wait for finish(). */
  async walk(dir: string, into: string[]): Promise<void> {
    let list;
    try {
      list = await fs.readdir(dir, { withFileTypes: true });
    } catch (e: any) {
      this.skip(dir, `cannot read folder (${e.code ?? e.message})`);
      return;
    }
    list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const real: string[] = [];
    for (const e of list) {
      const full = path.join(dir, e.name);
      if (e.name.startsWith('.')) this.skip(full, e.isDirectory() ? 'hidden folder' : 'hidden file');
      else if (e.isSymbolicLink()) this.pending.push({ path: full, into });
      else real.push(full);
    }
    const stats = await mapConcurrent(real, IO_CONCURRENCY, (p) => fs.lstat(p).catch(() => undefined));
    const files: Array<{ path: string; size: number }> = [];
    for (const [i, full] of real.entries()) {
      const st = stats[i];
      if (!st) continue; // removed while walking
      if (st.isFile()) {
        if (this.claim(full, st, 'a hard link')) files.push({ path: full, size: st.size });
      } else await this.visit(full, st, into, 'a second path');
    }
    await this.classify(files, into);
  }

  /** Pushes the files whose content is an image into `into`, and skips the rest with their reason. */
  private async classify(files: Array<{ path: string; size: number }>, into: string[]): Promise<void> {
    const kinds = await mapConcurrent(files, IO_CONCURRENCY, (f) => classifyFile(f.path, f.size));
    files.forEach((f, i) => {
      const k = kinds[i]!;
      if ('reason' in k) this.skip(f.path, k.reason);
      else {
        this.formats.set(f.path, k.format);
        into.push(f.path);
      }
    });
  }

  private async visit(full: string, st: Stats, into: string[], via: string): Promise<void> {
    if (st.isDirectory()) {
      if (this.claim(full, st, via)) await this.walk(full, into);
    } else if (st.isFile()) {
      if (this.claim(full, st, via)) await this.classify([{ path: full, size: st.size }], into);
    } else this.skip(full, `${kindOf(st)}, not an image file`);
  }

  /**
   * The entries of a folder whose sub-folders have a meaning (class folders, train/ and val/): hidden entries are
   * skipped, symbolic links are followed now (loops, dangling links and second paths skipped with their reason),
   * and each usable folder is claimed. Files are returned with `dir: false` for the caller to judge.
   */
  async topLevel(dir: string): Promise<Array<{ name: string; full: string; dir: boolean }>> {
    const out: Array<{ name: string; full: string; dir: boolean }> = [];
    const list = (await fs.readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of list) {
      const full = path.join(dir, e.name);
      if (e.name.startsWith('.')) {
        this.skip(full, e.isDirectory() ? 'hidden folder' : 'hidden file');
        continue;
      }
      const resolved = e.isSymbolicLink() ? await this.resolveLink(full) : await fs.lstat(full).catch(() => undefined);
      if (!resolved) continue;
      if (!resolved.isDirectory()) out.push({ name: e.name, full, dir: false });
      else if (this.claim(full, resolved, e.isSymbolicLink() ? `a symbolic link (-> ${await fs.readlink(full)})` : 'a second path')) out.push({ name: e.name, full, dir: true });
    }
    return out;
  }

  /** Follows the symbolic links met so far (and those met behind them), each once. */
  async finish(): Promise<void> {
    while (this.pending.length) {
      const batch = this.pending;
      this.pending = [];
      for (const link of batch) await this.follow(link);
    }
  }

  private loop(p: string, reason: string): void {
    const r = { path: p, reason };
    this.loops.push(r);
    this.skipped.push(r);
  }

  /** What a symbolic link leads to, or undefined (and a skip reason) for a dangling link or a loop. */
  private async resolveLink(p: string): Promise<Stats | undefined> {
    const target = await fs.readlink(p).catch(() => '?');
    let st: Stats;
    let real: string;
    try {
      st = await fs.stat(p);
      real = await fs.realpath(p);
    } catch (e: any) {
      if (e.code === 'ELOOP') this.loop(p, `symbolic link loop (-> ${target}): it never reaches a file`);
      else this.skip(p, e.code === 'ENOENT' ? `dangling symbolic link (-> ${target}, which does not exist)` : `cannot follow symbolic link (-> ${target}: ${e.code ?? e.message})`);
      return undefined;
    }
    if (st.isDirectory()) {
      const parent = await fs.realpath(path.dirname(p)).catch(() => path.dirname(p));
      if (parent === real || parent.startsWith(real.endsWith(path.sep) ? real : real + path.sep)) {
        this.loop(p, `symbolic link loop (-> ${target}): it points back to ${real}, a folder that contains it`);
        return undefined;
      }
    }
    return st;
  }

  private async follow({ path: p, into }: PendingLink): Promise<void> {
    const st = await this.resolveLink(p);
    if (st) await this.visit(p, st, into, `a symbolic link (-> ${await fs.readlink(p).catch(() => '?')})`);
  }
}
