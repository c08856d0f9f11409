/**
 * Safe extraction of dataset archives (zip with yauzl, tar and tar.gz with tar-stream) into a folder that the
 * caller creates fresh and renames into place afterwards. Refused, with nothing written outside the folder:
 * entries with absolute paths or `..` segments (zip-slip), symbolic and hard links, device files and FIFOs, and
 * archives that expand past `maxBytes`. File modes in the archive are ignored (files 0644, folders 0755).
 */
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tarStream from 'tar-stream';
import * as yauzl from 'yauzl';
import type { ArchiveFormat } from './registry.js';

export class UnsafeArchiveError extends Error {}
export class ArchiveError extends Error {}

export interface ExtractArchiveOptions {
  /** Refuse the archive when its files add up to more than this (default 64 GiB). */
  maxBytes?: number;
  /** Only this member of a zip is used: an archive itself, extracted in turn (Caltech-101's tar.gz). */
  inner?: { path: string; format: ArchiveFormat };
  /** Progress in bytes of the archive read so far. */
  onProgress?: (done: number, total: number) => void;
}

export interface ExtractArchiveResult {
  files: number;
  bytes: number;
}

const GIB = 1024 ** 3;

/**
 * The path inside `dest` for an archive entry name, or an UnsafeArchiveError. '' means the entry is the top
 * folder itself. Both '/' and '\' count as separators, so a Windows-made `..\x` is refused too.
 */
export function entryTarget(dest: string, name: string, archive: string): string {
  const refuse = (why: string) => new UnsafeArchiveError(`${archive}: refused entry '${name}': ${why}; nothing was extracted`);
  if (name.includes('\0')) throw refuse('its name holds a NUL character');
  if (/^[\\/]/.test(name) || /^[a-zA-Z]:/.test(name)) throw refuse('absolute path');
  const parts = name.split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw refuse("a '..' path segment would write outside the target folder");
  const full = path.join(dest, ...parts);
  const rel = path.relative(dest, full);
  if (rel.startsWith('..') || path.isAbsolute(rel)) throw refuse('it would land outside the target folder');
  return full;
}

class Budget {
  used = 0;
  files = 0;
  constructor(
    readonly max: number,
    readonly archive: string,
  ) {}
  claim(n: number, name: string): void {
    this.used += n;
    if (this.used > this.max) {
      throw new UnsafeArchiveError(`${this.archive}: expands past the limit of ${(this.max / GIB).toFixed(1)} GiB (at '${name}'); nothing was kept. If the archive is genuine, raise the limit (--max-size)`);
    }
  }
}

/** Writes one entry's bytes, counting them against the budget as they come (sizes in headers can lie). */
async function writeFile(src: Readable | AsyncIterable<Buffer>, target: string, budget: Budget, name: string): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
  const count = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      try {
        budget.claim(chunk.length, name);
        cb(null, chunk);
      } catch (e) {
        cb(e as Error);
      }
    },
  });
  await pipeline(src, count, createWriteStream(target, { mode: 0o644 }));
  budget.files++;
}

const TAR_SKIP = new Set(['pax-header', 'pax-global-header', 'gnu-long-path', 'gnu-long-link-path']);

/** Extracts a tar stream (already decompressed) into `dest`. */
async function extractTarStream(input: Readable, dest: string, budget: Budget): Promise<void> {
  const extract = tarStream.extract();
  const feeding = pipeline(input, extract).catch((e) => {
    extract.destroy(e);
    throw e;
  });
  feeding.catch(() => {}); // awaited below; this keeps an early failure from counting as unhandled meanwhile
  try {
    for await (const entry of extract) {
      const { name, type } = entry.header;
      const kind = type ?? 'file';
      if (TAR_SKIP.has(kind)) {
        entry.resume();
        continue;
      }
      if (kind === 'symlink' || kind === 'link') {
        throw new UnsafeArchiveError(`${budget.archive}: refused entry '${name}': a ${kind === 'symlink' ? 'symbolic' : 'hard'} link (to '${entry.header.linkname}'); datasets hold plain files only; nothing was extracted`);
      }
      if (kind !== 'file' && kind !== 'contiguous-file' && kind !== 'directory') {
        throw new UnsafeArchiveError(`${budget.archive}: refused entry '${name}': a ${kind} entry; datasets hold plain files only; nothing was extracted`);
      }
      const target = entryTarget(dest, name, budget.archive);
      if (kind === 'directory') {
        await fs.mkdir(target, { recursive: true, mode: 0o755 });
        entry.resume();
        continue;
      }
      if ((entry.header.size ?? 0) + budget.used > budget.max) budget.claim(entry.header.size ?? 0, name);
      if (target === dest) throw new UnsafeArchiveError(`${budget.archive}: refused entry '${name}': a file without a name`);
      await writeFile(entry as unknown as AsyncIterable<Buffer>, target, budget, name);
    }
    await feeding;
  } catch (e) {
    input.destroy();
    await feeding.catch(() => {});
    throw e;
  }
}

function zipEntryKind(e: yauzl.Entry): 'file' | 'directory' | string {
  const mode = (e.externalFileAttributes >>> 16) & 0o170000;
  if (mode === 0o120000) return 'symbolic link';
  if (mode === 0o020000) return 'character device';
  if (mode === 0o060000) return 'block device';
  if (mode === 0o010000) return 'fifo';
  if (mode === 0o140000) return 'socket';
  return e.fileName.endsWith('/') || mode === 0o040000 ? 'directory' : 'file';
}

function wrapZipError(e: any, archive: string): Error {
  if (e instanceof UnsafeArchiveError || e instanceof ArchiveError) return e;
  const msg = String(e?.message ?? e);
  if (/absolute path|invalid relative path|invalid characters in fileName/.test(msg)) return new UnsafeArchiveError(`${archive}: refused entry (${msg}); nothing was extracted`);
  return new ArchiveError(`${archive} is not a readable zip archive: ${msg}`);
}

async function extractZip(file: string, dest: string, budget: Budget, o: ExtractArchiveOptions): Promise<void> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false, validateEntrySizes: true, strictFileNames: false });
  } catch (e) {
    throw wrapZipError(e, file);
  }
  try {
    // First every entry is checked, so that an unsafe archive is refused before anything is written.
    const entries: yauzl.Entry[] = [];
    let declared = 0;
    try {
      for await (const e of zip.eachEntry()) {
        entries.push(e);
        const kind = zipEntryKind(e);
        if (kind !== 'file' && kind !== 'directory') throw new UnsafeArchiveError(`${file}: refused entry '${e.fileName}': a ${kind}; datasets hold plain files only; nothing was extracted`);
        if (e.isEncrypted()) throw new ArchiveError(`${file}: entry '${e.fileName}' is encrypted; tlearn cannot read encrypted archives`);
        entryTarget(dest, e.fileName, file);
        if (!o.inner) declared += e.uncompressedSize;
      }
    } catch (e) {
      throw wrapZipError(e, file);
    }
    if (declared > budget.max) budget.claim(declared, '(all entries)');
    const total = o.inner ? (entries.find((e) => e.fileName === o.inner!.path)?.compressedSize ?? 0) : entries.reduce((s, e) => s + e.compressedSize, 0);
    let done = 0;
    if (o.inner) {
      const inner = entries.find((e) => e.fileName === o.inner!.path);
      if (!inner) throw new ArchiveError(`${file} has no '${o.inner.path}' (it holds ${entries.slice(0, 8).map((e) => `'${e.fileName}'`).join(', ')}${entries.length > 8 ? ', ...' : ''}); it is not the expected archive`);
      const stream = await zip.openReadStreamPromise(inner).catch((e) => Promise.reject(wrapZipError(e, file)));
      const counted = stream.pipe(
        new Transform({
          transform(chunk: Buffer, _enc, cb) {
            done += chunk.length;
            o.onProgress?.(Math.min(done, total), total);
            cb(null, chunk);
          },
        }),
      );
      stream.on('error', (e) => counted.destroy(e));
      await extractStream(counted, o.inner.format, dest, budget, `${file}:${o.inner.path}`);
      return;
    }
    for (const e of entries) {
      const target = entryTarget(dest, e.fileName, file);
      if (zipEntryKind(e) === 'directory') {
        await fs.mkdir(target, { recursive: true, mode: 0o755 });
        continue;
      }
      if (target === dest) throw new UnsafeArchiveError(`${file}: refused entry '${e.fileName}': a file without a name`);
      const stream = await zip.openReadStreamPromise(e).catch((err) => Promise.reject(wrapZipError(err, file)));
      try {
        await writeFile(stream, target, budget, e.fileName);
      } catch (err) {
        throw wrapZipError(err, file);
      }
      done += e.compressedSize;
      o.onProgress?.(done, total);
    }
  } finally {
    zip.close();
  }
}

/** A (decompressed or not) stream of a tar or tar.gz archive. */
async function extractStream(input: Readable, format: ArchiveFormat, dest: string, budget: Budget, label: string): Promise<void> {
  if (format === 'zip') throw new ArchiveError(`${label}: a zip inside an archive is not supported`);
  const b = new Budget(budget.max, label);
  try {
    if (format === 'tar.gz') {
      const gunzip = createGunzip();
      input.on('error', (e) => gunzip.destroy(e));
      await extractTarStream(input.pipe(gunzip), dest, b);
    } else {
      await extractTarStream(input, dest, b);
    }
  } catch (e: any) {
    if (e instanceof UnsafeArchiveError || e instanceof ArchiveError) throw e;
    if (e?.code?.startsWith?.('Z_') || /header|tar|unexpected end/i.test(String(e?.message))) throw new ArchiveError(`${label} is not a readable ${format} archive (${e.message}); it may be truncated or corrupt`);
    throw e;
  } finally {
    budget.used += b.used;
    budget.files += b.files;
  }
}

/** Recognises zip, gzip (taken as tar.gz) and plain tar archives by their first bytes. */
export async function sniffArchive(file: string): Promise<ArchiveFormat | undefined> {
  const fh = await fs.open(file, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    if (bytesRead >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'zip';
    if (bytesRead >= 4 && head.readUInt32LE(0) === 0x06054b50) return 'zip'; // an empty zip
    if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
    if (bytesRead >= 262 && head.toString('latin1', 257, 262) === 'ustar') return 'tar';
    return undefined;
  } finally {
    await fh.close();
  }
}

/**
 * Extracts `file` into `dest` (created; it should be a fresh staging folder that the caller renames into place
 * once everything checked out, and removes on failure).
 */
export async function extractArchive(file: string, format: ArchiveFormat, dest: string, o: ExtractArchiveOptions = {}): Promise<ExtractArchiveResult> {
  const budget = new Budget(o.maxBytes ?? 64 * GIB, file);
  await fs.mkdir(dest, { recursive: true, mode: 0o755 });
  if (format === 'zip') {
    await extractZip(file, dest, budget, o);
  } else {
    if (o.inner) throw new ArchiveError(`${file}: an archive inside a ${format} archive is not supported`);
    const total = (await fs.stat(file)).size;
    let done = 0;
    const input = createReadStream(file);
    input.on('data', (c) => {
      done += c.length;
      o.onProgress?.(done, total);
    });
    await extractStream(input, format, dest, budget, file);
  }
  return { files: budget.files, bytes: budget.used };
}
