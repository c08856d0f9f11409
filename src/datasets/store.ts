/**
 * tlearn's dataset store ($TLEARN_HOME/datasets/<name>/): datasets downloaded by name or imported from a local
 * archive or folder. An entry is built in a staging folder (extracted, its folder of class folders located and
 * counted, its record written) and renamed into place in one step, so an interrupted download or extraction
 * never leaves a half dataset that looks whole. A folder is imported by reference (nothing copied) unless
 * `copy` is asked for.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc, promises as fs } from 'node:fs';
import path from 'node:path';
import { loadImageFolder } from '../data/discover.js';
import { DownloadError, downloadsDir, downloadWithProgress, HashMismatchError, mirrored, type ExpectedHash } from '../util/download.js';
import { pidAlive, writeFileAtomic } from '../util/fs.js';
import { hashFile } from '../util/hash.js';
import { tlearnHome } from '../util/home.js';
import { silentLogger, type Logger, type Progress } from '../util/log.js';
import { extractArchive, sniffArchive } from './extract.js';
import { findEntry, isDatasetName, loadRegistry, type ArchiveFormat, type DatasetEntry } from './registry.js';

export const DATASET_RECORD = 'tlearn-dataset.json';

export interface DatasetRecord {
  name: string;
  /** download: fetched by name; import: extracted from a local archive or copied from a folder; link: a folder used where it is. */
  origin: 'download' | 'import' | 'link';
  /** The URL it was downloaded from, or the local archive or folder it was imported from. */
  source: string;
  /** The folder that holds the class folders: relative to the store entry, or absolute for a link. */
  folder: string;
  archive?: {
    file: string;
    bytes: number;
    sha256: string;
    /** publisher: matched the published hash; first-download: recorded now, later downloads must match; recorded: matched the one recorded earlier; none: no reference to check against. */
    check: 'publisher' | 'first-download' | 'recorded' | 'none';
    hashSource?: string;
  };
  classes: number;
  images: number;
  createdAt: string;
}

export class DatasetUnavailableError extends Error {}
export class DatasetImportError extends Error {}

export function datasetsDir(): string {
  return path.join(tlearnHome(), 'datasets');
}

export function datasetDir(name: string): string {
  return path.join(datasetsDir(), name);
}

export function recordFolder(name: string, r: DatasetRecord): string {
  return path.isAbsolute(r.folder) ? r.folder : path.join(datasetDir(name), r.folder);
}

export async function readDatasetRecord(name: string): Promise<DatasetRecord | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(datasetDir(name), DATASET_RECORD), 'utf8'));
  } catch {
    return undefined;
  }
}

interface KnownHash {
  sha256: string;
  bytes: number;
  recordedAt: string;
}

function knownHashesFile(): string {
  return path.join(datasetsDir(), 'known-hashes.json');
}

/** SHA-256s recorded at the first download of archives whose publisher publishes none, by URL. */
async function knownHashes(): Promise<Record<string, KnownHash>> {
  try {
    return JSON.parse(await fs.readFile(knownHashesFile(), 'utf8'));
  } catch {
    return {};
  }
}

async function recordKnownHash(url: string, h: KnownHash): Promise<void> {
  const all = await knownHashes();
  all[url] = h;
  await writeFileAtomic(knownHashesFile(), `${JSON.stringify(all, null, 2)}\n`);
}

/** Removes staging folders left by processes that were killed mid-way. */
async function cleanStaleStaging(): Promise<void> {
  const names = await fs.readdir(datasetsDir()).catch(() => [] as string[]);
  for (const n of names) {
    const m = /^\.(?:staging|trash)-.*-(\d+)-[0-9a-f]{8}$/.exec(n);
    if (m && !pidAlive(Number(m[1]))) await fs.rm(path.join(datasetsDir(), n), { recursive: true, force: true });
  }
}

function stagingDir(kind: 'staging' | 'trash', name: string): string {
  return path.join(datasetsDir(), `.${kind}-${name}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Puts a finished staging folder in place of `name` (replacing an older entry) in one rename. */
async function commit(staging: string, name: string): Promise<void> {
  const dest = datasetDir(name);
  let trash: string | undefined;
  if (await fs.stat(dest).catch(() => undefined)) {
    trash = stagingDir('trash', name);
    await fs.rename(dest, trash);
  }
  await fs.rename(staging, dest);
  if (trash) await fs.rm(trash, { recursive: true, force: true });
}

/** Counts classes and images the way training sees them. */
async function countDataset(folder: string): Promise<{ classes: number; images: number }> {
  const ds = await loadImageFolder(folder);
  return { classes: ds.classes.length, images: ds.images.length };
}

const SPLIT_NAMES = new Set(['train', 'val', 'valid', 'validation', 'test']);

/** The folder of class folders inside an extracted archive: `root` when given, else descends single folders. */
async function locateRoot(top: string, root: string | undefined, archive: string): Promise<string> {
  if (root !== undefined) {
    const dir = path.join(top, ...root.split('/').filter(Boolean));
    if (!(await fs.stat(dir).catch(() => undefined))?.isDirectory()) {
      const found = (await fs.readdir(top).catch(() => [] as string[])).slice(0, 10);
      throw new DatasetImportError(`${archive} has no folder '${root}' (its top level holds: ${found.join(', ') || 'nothing'}); it is not the expected archive`);
    }
    return dir;
  }
  let dir = top;
  for (;;) {
    const list = (await fs.readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith('.') && e.name !== '__MACOSX');
    const dirs = list.filter((e) => e.isDirectory());
    if (dirs.length !== 1 || list.length !== 1 || SPLIT_NAMES.has(dirs[0]!.name.toLowerCase())) return dir;
    dir = path.join(dir, dirs[0]!.name);
  }
}

interface InstallOptions {
  name: string;
  archive: string;
  format: ArchiveFormat;
  inner?: DatasetEntry['inner'];
  root?: string;
  expect?: DatasetEntry['expect'];
  maxBytes?: number;
  log: Logger;
  record: Omit<DatasetRecord, 'folder' | 'classes' | 'images' | 'createdAt'>;
}

/** Extracts an archive into a staging folder, checks what it holds, writes the record and puts it in place. */
async function installArchive(o: InstallOptions): Promise<DatasetRecord> {
  await fs.mkdir(datasetsDir(), { recursive: true });
  await cleanStaleStaging();
  const staging = stagingDir('staging', o.name);
  try {
    const size = (await fs.stat(o.archive)).size;
    let bar: Progress | undefined;
    let last = 0;
    const res = await extractArchive(o.archive, o.format, path.join(staging, 'extract'), {
      inner: o.inner,
      maxBytes: o.maxBytes ?? Math.max(4 * 1024 ** 3, 20 * size),
      onProgress: (done, total) => {
        bar ??= o.log.progress(`extracting ${o.name}`, total, 'B');
        bar.tick(done - last);
        last = done;
      },
    });
    bar?.done();
    const rootDir = await locateRoot(path.join(staging, 'extract'), o.root, o.inner ? `${o.archive}:${o.inner.path}` : o.archive);
    const folderName = rootDir === path.join(staging, 'extract') ? 'data' : path.basename(rootDir);
    await fs.rename(rootDir, path.join(staging, folderName));
    await fs.rm(path.join(staging, 'extract'), { recursive: true, force: true });
    const counts = await countDataset(path.join(staging, folderName)).catch((e) => {
      const inside = path.relative(path.join(staging, 'extract'), rootDir) || '(the top)';
      throw new DatasetImportError(`${o.archive} does not hold a dataset of class folders in ${inside}: ${String(e.message).split(path.join(staging, folderName)).join(inside)}`);
    });
    if (o.expect && (counts.classes !== o.expect.classes || counts.images !== o.expect.images)) {
      throw new DatasetImportError(
        `${o.name}: the archive holds ${counts.classes} classes and ${counts.images} images, but ${o.name} has ${o.expect.classes} classes and ${o.expect.images.toLocaleString('en-US')} images; it is not the dataset tlearn knows by that name, and nothing was kept`,
      );
    }
    const record: DatasetRecord = { ...o.record, folder: folderName, ...counts, createdAt: new Date().toISOString() };
    await writeFileAtomic(path.join(staging, DATASET_RECORD), `${JSON.stringify(record, null, 2)}\n`);
    await commit(staging, o.name);
    o.log.info(`${o.name}: ${counts.classes} classes, ${counts.images.toLocaleString('en-US')} images (${res.files} files, ${(res.bytes / 1e6).toFixed(1)} MB) in ${recordFolder(o.name, record)}`);
    return record;
  } catch (e) {
    await fs.rm(staging, { recursive: true, force: true });
    throw e;
  }
}

function offlineHelp(entry: DatasetEntry, url: string, reason: string): string {
  return [
    `dataset ${entry.name} is not in tlearn's store (${datasetsDir()}) and could not be downloaded: ${reason}.`,
    'Either:',
    `  - connect this machine to the internet and run the command again (${entry.size} from ${url}), or`,
    `  - copy it from a machine that has it: the archive ${entry.file} (from ${entry.url}) or its folder ${entry.root || '(the top)'}, and run`,
    `      tlearn datasets import <folder|archive> --name ${entry.name}`,
  ].join('\n');
}

/** Downloads a registry dataset into the store (again, with `force`), verifying and extracting it. */
export async function getDataset(entry: DatasetEntry, o: { force?: boolean; logger?: Logger } = {}): Promise<DatasetRecord> {
  const log = o.logger ?? silentLogger;
  if (!o.force) {
    const existing = await readDatasetRecord(entry.name);
    if (existing) return existing;
  }
  const url = mirrored(entry.url);
  const known = entry.hash ? undefined : (await knownHashes())[entry.url];
  const expected: ExpectedHash | undefined = entry.hash ?? (known ? { algorithm: 'sha256', value: known.sha256 } : undefined);
  const archive = path.join(downloadsDir(), entry.file);
  log.info(`downloading ${entry.name} (${entry.title}, ${entry.size}) from ${url}`);
  let got;
  try {
    got = await downloadWithProgress(url, archive, entry.name, log, expected);
  } catch (e) {
    if (e instanceof DownloadError && e.offline) throw new DatasetUnavailableError(offlineHelp(entry, url, e.message));
    if (e instanceof HashMismatchError && known) {
      throw new HashMismatchError(
        `${e.message.replace("the publisher's is", 'tlearn recorded')} at its first download on ${known.recordedAt.slice(0, 10)}: the file at ${url} changed. If the publisher updated it on purpose, delete its line in ${knownHashesFile()} and run again`,
      );
    }
    throw e;
  }
  const check: NonNullable<DatasetRecord['archive']>['check'] = entry.hash ? 'publisher' : known ? 'recorded' : 'first-download';
  log.info(`${entry.name}: ${entry.file} verified (${check === 'publisher' ? `${entry.hash!.algorithm} as published by ${entry.hash!.source}` : check === 'recorded' ? 'sha256 as recorded at the first download' : `no published hash: sha256 ${got.sha256} recorded for later downloads`})`);
  try {
    const record = await installArchive({
      name: entry.name,
      archive,
      format: entry.format,
      inner: entry.inner,
      root: entry.root,
      expect: entry.expect,
      log,
      record: { name: entry.name, origin: 'download', source: url, archive: { file: entry.file, bytes: got.bytes, sha256: got.sha256, check, hashSource: entry.hash?.source } },
    });
    if (check === 'first-download') await recordKnownHash(entry.url, { sha256: got.sha256, bytes: got.bytes, recordedAt: new Date().toISOString() });
    return record;
  } finally {
    await fs.rm(archive, { force: true });
  }
}

export interface ImportOptions {
  /** Copy a folder into the store instead of using it where it is. */
  copy?: boolean;
  /** The folder inside an archive (or the given folder) that holds the class folders. */
  root?: string;
  /** Refuse archives that expand past this many bytes. */
  maxBytes?: number;
  logger?: Logger;
}

async function checkArchiveHash(file: string, entry: DatasetEntry): Promise<{ sha256: string; check: NonNullable<DatasetRecord['archive']>['check'] }> {
  const sha256 = await hashFile(file);
  if (entry.hash) {
    const got = entry.hash.algorithm === 'sha256' ? sha256 : await hashFile(file, entry.hash.algorithm);
    if (got !== entry.hash.value) {
      throw new DatasetImportError(`${file} has ${entry.hash.algorithm} ${got}, but ${entry.hash.source} lists ${entry.hash.value} for ${entry.file}: it is not the ${entry.name} archive. Import it under another name (--name my-${entry.name})`);
    }
    return { sha256, check: 'publisher' };
  }
  const known = (await knownHashes())[entry.url];
  if (known && known.sha256 !== sha256) {
    throw new DatasetImportError(`${file} has sha256 ${sha256}, but tlearn recorded ${known.sha256} when it first downloaded ${entry.file}: it is not that archive. Import it under another name (--name my-${entry.name})`);
  }
  return { sha256, check: known ? 'recorded' : 'none' };
}

/**
 * Imports a local archive (extracted into the store) or folder (used where it is, or copied with `copy`) under a
 * name. For a registry name, an archive must be the publisher's (where a hash is known) and the contents must
 * match the registry's counts.
 */
export async function importDataset(source: string, name: string, o: ImportOptions = {}): Promise<DatasetRecord> {
  const log = o.logger ?? silentLogger;
  const n = name.trim().toLowerCase();
  if (!isDatasetName(n)) throw new DatasetImportError(`'${name}' is not a valid dataset name: use lower-case letters, digits, '_', '.' and '-'`);
  const entry = await findEntry(n);
  const src = path.resolve(source);
  const st = await fs.stat(src).catch(() => undefined);
  if (!st) throw new DatasetImportError(`${source} does not exist`);
  if (st.isFile()) {
    const format = await sniffArchive(src);
    if (!format) throw new DatasetImportError(`${source} is not a zip, tar or tar.gz archive (or a folder)`);
    let inner = entry?.inner;
    let archive: DatasetRecord['archive'];
    if (entry && format === entry.format) {
      const h = await checkArchiveHash(src, entry);
      archive = { file: path.basename(src), bytes: st.size, sha256: h.sha256, check: h.check, hashSource: entry.hash?.source };
    } else {
      // Not the registry's archive format: for Caltech-101, the inner 101_ObjectCategories.tar.gz itself.
      if (entry && !(entry.inner && format === entry.inner.format)) log.warn(`${source} is a ${format} archive; ${entry.name} is published as ${entry.format}: its contents are checked instead`);
      inner = undefined;
      archive = { file: path.basename(src), bytes: st.size, sha256: await hashFile(src), check: 'none' };
    }
    return installArchive({
      name: n,
      archive: src,
      format,
      inner,
      root: o.root ?? entry?.root,
      expect: entry?.expect,
      maxBytes: o.maxBytes,
      log,
      record: { name: n, origin: 'import', source: src, archive },
    });
  }
  if (!st.isDirectory()) throw new DatasetImportError(`${source} is neither a folder nor an archive`);
  let folder = o.root ? path.join(src, o.root) : src;
  if (!o.root && entry?.root && (await fs.stat(path.join(src, entry.root)).catch(() => undefined))?.isDirectory()) {
    folder = path.join(src, entry.root);
    log.info(`using ${folder}, the folder ${entry.name} keeps its classes in`);
  }
  const counts = await countDataset(folder).catch((e) => {
    throw new DatasetImportError(`${folder} is not a dataset of class folders: ${e.message}`);
  });
  if (entry?.expect && (counts.classes !== entry.expect.classes || counts.images !== entry.expect.images)) {
    log.warn(`${folder} holds ${counts.classes} classes and ${counts.images} images; the published ${entry.name} has ${entry.expect.classes} and ${entry.expect.images} (imported anyway)`);
  }
  await fs.mkdir(datasetsDir(), { recursive: true });
  await cleanStaleStaging();
  const staging = stagingDir('staging', n);
  try {
    await fs.mkdir(staging, { recursive: true });
    let rel = folder;
    if (o.copy) {
      rel = path.basename(folder) || 'data';
      log.info(`copying ${folder} into the store`);
      await fs.cp(folder, path.join(staging, rel), { recursive: true, dereference: true, errorOnExist: true, force: false, mode: fsc.COPYFILE_FICLONE });
    }
    const record: DatasetRecord = { name: n, origin: o.copy ? 'import' : 'link', source: folder, folder: rel, ...counts, createdAt: new Date().toISOString() };
    await writeFileAtomic(path.join(staging, DATASET_RECORD), `${JSON.stringify(record, null, 2)}\n`);
    await commit(staging, n);
    return record;
  } catch (e) {
    await fs.rm(staging, { recursive: true, force: true });
    throw e;
  }
}

/** Removes a dataset from the store (for a folder used by reference, only the name: the folder is untouched). */
export async function removeDataset(name: string): Promise<DatasetRecord> {
  const n = name.trim().toLowerCase();
  const record = isDatasetName(n) ? await readDatasetRecord(n) : undefined;
  if (!record) throw new DatasetUnavailableError(`no dataset named '${name}' in the store (${datasetsDir()}); see tlearn datasets list`);
  const trash = stagingDir('trash', n);
  await fs.rename(datasetDir(n), trash);
  await fs.rm(trash, { recursive: true, force: true });
  return record;
}

export interface DatasetStatus {
  name: string;
  entry?: DatasetEntry;
  record?: DatasetRecord;
  /** The folder of class folders, when the dataset is in the store. */
  folder?: string;
  /** For a dataset used by reference: false when its folder is gone. */
  present: boolean;
}

/** Every registry dataset and every dataset in the store. */
export async function datasetsStatus(): Promise<DatasetStatus[]> {
  const registry = await loadRegistry();
  const stored = (await fs.readdir(datasetsDir()).catch(() => [] as string[])).filter((n) => isDatasetName(n));
  const names = [...registry.map((e) => e.name), ...stored.filter((n) => !registry.some((e) => e.name === n)).sort()];
  const out: DatasetStatus[] = [];
  for (const name of names) {
    const record = await readDatasetRecord(name);
    const folder = record ? recordFolder(name, record) : undefined;
    const present = folder ? Boolean((await fs.stat(folder).catch(() => undefined))?.isDirectory()) : false;
    if (!record && !registry.some((e) => e.name === name)) continue;
    out.push({ name, entry: registry.find((e) => e.name === name), record, folder, present });
  }
  return out;
}
