/**
 * Remembers each image file's content hash by (path, size, mtime, inode), so a later run can find cached
 * features without reading the image again. A file whose size, mtime or inode changed is hashed anew.
 */
import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/fs.js';
import { sha256 } from '../util/hash.js';
import { tlearnHome } from '../util/home.js';

/** Where the index lives: with the features cache ($TLEARN_HOME/features), so `tlearn cache clear` clears it too. */
export function defaultHashIndexFile(): string {
  return path.join(tlearnHome(), 'features', 'content-hashes.json');
}

interface Entry {
  s: number;
  m: number;
  i: number;
  h: string;
}

export interface HashedFile {
  hash: string;
  /** The file's bytes, when they had to be read to hash it. */
  bytes?: Buffer;
}

export class ContentHashIndex {
  private entries = new Map<string, Entry>();
  private dirty = false;

  constructor(readonly file: string) {}

  static async open(file = defaultHashIndexFile()): Promise<ContentHashIndex> {
    const idx = new ContentHashIndex(file);
    try {
      const obj = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, Entry>;
      idx.entries = new Map(Object.entries(obj));
    } catch {
      /* missing or unreadable index: start empty */
    }
    return idx;
  }

  private static matches(e: Entry | undefined, st: Stats): e is Entry {
    return Boolean(e && e.s === st.size && e.m === st.mtimeMs && e.i === st.ino);
  }

  /** The content hash of `file`, reading it only when the index has no up-to-date entry. */
  async hash(file: string): Promise<HashedFile> {
    const abs = path.resolve(file);
    const st = await fs.stat(abs);
    const known = this.entries.get(abs);
    if (ContentHashIndex.matches(known, st)) return { hash: known.h };
    const bytes = await fs.readFile(abs);
    const hash = sha256(bytes);
    this.entries.set(abs, { s: st.size, m: st.mtimeMs, i: st.ino, h: hash });
    this.dirty = true;
    return { hash, bytes };
  }

  /**
   * What the index knows about `file` without reading it: its current stats, and its content hash when the
   * entry is up to date. Undefined when the file cannot be stat'ed (missing, or not visible on this machine).
   */
  async peek(file: string): Promise<{ stats: Stats; hash?: string } | undefined> {
    const abs = path.resolve(file);
    const stats = await fs.stat(abs).catch(() => undefined);
    if (!stats) return undefined;
    const known = this.entries.get(abs);
    return { stats, hash: ContentHashIndex.matches(known, stats) ? known.h : undefined };
  }

  /**
   * Records a content hash computed elsewhere (e.g. by a worker that read the file) for `file` as it was
   * when `stats` were taken. A later change to the file changes its stats, so the entry is then ignored.
   */
  remember(file: string, stats: Stats, hash: string): void {
    this.entries.set(path.resolve(file), { s: stats.size, m: stats.mtimeMs, i: stats.ino, h: hash });
    this.dirty = true;
  }

  async save(): Promise<void> {
    if (!this.dirty) return;
    await writeFileAtomic(this.file, JSON.stringify(Object.fromEntries(this.entries)));
    this.dirty = false;
  }
}
