/**
 * Pretrained weights in the cache ($TLEARN_HOME/models/<zoo-name>/): downloaded once, or imported from a
 * local copy, with a record of each file's sha256 that is checked on every later load.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { hashFile } from '../util/hash.js';
import { tlearnHome } from '../util/home.js';
import { installFolder, writeFileAtomic } from '../util/fs.js';
import { tempPath } from '../util/tempfiles.js';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import { DownloadError, downloadsDir, downloadWithProgress } from '../util/download.js';
import { kerasAppArtifacts, kerasAppTopology } from './keras-apps/artifacts.js';
import { readLayersModel, type LayersModelArtifacts } from './layers-model.js';
import { allLayerNames } from './surgery.js';
import { resolveUrl, ZOO, type ZooEntry } from './zoo.js';

export const RECORD_FILE = 'tlearn-source.json';

export interface CacheRecord {
  name: string;
  url: string;
  /** 'download' or 'import' */
  origin: 'download' | 'import';
  importedFrom?: string;
  /** Where the hashes below come from. */
  hashOrigin: 'publisher' | 'first-download' | 'import';
  files: Record<string, string>;
  createdAt: string;
}

export class BackboneUnavailableError extends Error {}
export class CacheIntegrityError extends Error {}

export function modelsDir(): string {
  return path.join(tlearnHome(), 'models');
}

export function entryDir(entry: ZooEntry): string {
  return path.join(modelsDir(), entry.name);
}

export async function readRecord(dir: string): Promise<CacheRecord | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(dir, RECORD_FILE), 'utf8'));
  } catch {
    return undefined;
  }
}

/** Checks every recorded file against its recorded sha256. */
export async function verifyCached(dir: string, record: CacheRecord): Promise<void> {
  for (const [file, want] of Object.entries(record.files)) {
    let got: string;
    try {
      got = await hashFile(path.join(dir, file));
    } catch {
      throw new CacheIntegrityError(`cached file ${path.join(dir, file)} is missing`);
    }
    if (got !== want) throw new CacheIntegrityError(`cached file ${path.join(dir, file)} has sha256 ${got}, recorded ${want} (${record.hashOrigin})`);
  }
}

async function isValidCache(dir: string): Promise<boolean> {
  const record = await readRecord(dir);
  if (!record) return false;
  return verifyCached(dir, record).then(
    () => true,
    () => false,
  );
}

function offlineHelp(entry: ZooEntry, url: string, reason: string): string {
  return [
    `backbone ${entry.name} is not in the cache (${modelsDir()}) and could not be downloaded: ${reason}.`,
    'Either:',
    `  - connect this machine to the internet and run the command again (weights come from ${url}), or`,
    `  - copy ${entry.file} from a machine that has it (or download it there from ${url}) and run`,
    `      tlearn models import ${entry.file} --name ${entry.name}`,
    `    (or pass --weights <file.h5> for this run, or --backbone <folder> to use a local TF.js layers model).`,
    ...(entry.tfjsUrl ? [`  The TF.js copy of the same weights (${entry.tfjsUrl} and its weight files) also imports: tlearn models import <folder> --name ${entry.name}`] : []),
  ].join('\n');
}

async function download(entry: ZooEntry, dir: string, log: Logger): Promise<void> {
  const url = resolveUrl(entry.url);
  const staging = tempPath(dir);
  try {
    log.info(`downloading ${entry.name} from ${url}`);
    const tmp = path.join(downloadsDir(), entry.file);
    const { sha256 } = await downloadWithProgress(url, tmp, entry.name, log, entry.hash);
    await fs.mkdir(staging, { recursive: true });
    await fs.rename(tmp, path.join(staging, entry.file));
    const record: CacheRecord = { name: entry.name, url, origin: 'download', hashOrigin: entry.hash ? 'publisher' : 'first-download', files: { [entry.file]: sha256 }, createdAt: new Date().toISOString() };
    await writeFileAtomic(path.join(staging, RECORD_FILE), JSON.stringify(record, null, 2));
    // another process may have downloaded it meanwhile: keep theirs when it verifies
    await installFolder(staging, dir, () => isValidCache(dir));
  } catch (e: any) {
    await fs.rm(staging, { recursive: true, force: true });
    if (e instanceof DownloadError && e.offline) throw new BackboneUnavailableError(offlineHelp(entry, url, e.message));
    throw e;
  }
}

/** The folder of a zoo backbone in the cache, downloading it on first use and verifying it on every use. */
export async function ensureZooModel(entry: ZooEntry, log: Logger = silentLogger): Promise<string> {
  const dir = entryDir(entry);
  const record = await readRecord(dir);
  if (record) {
    try {
      await verifyCached(dir, record);
      return dir;
    } catch (e) {
      if (record.origin === 'import') throw e;
      log.warn(`${(e as Error).message}; downloading ${entry.name} again`);
    }
  }
  await download(entry, dir, log);
  return dir;
}

/** Checks a local weights file against the publisher's hash, where one is published. */
export async function checkPublisherHash(entry: ZooEntry, file: string): Promise<void> {
  if (!entry.hash) return;
  const got = await hashFile(file, entry.hash.algorithm);
  if (got !== entry.hash.value) {
    throw new CacheIntegrityError(`${file} has ${entry.hash.algorithm} ${got}, but Keras publishes ${entry.hash.value} for ${entry.file}: it is not the ${entry.name} weights file`);
  }
}

/** Refuses a TF.js folder whose weights do not have the zoo architecture's shapes (e.g. another width). */
async function checkFolderFits(entry: ZooEntry, artifacts: LayersModelArtifacts, source: string): Promise<void> {
  const { weights } = await kerasAppTopology(entry.app);
  const have = new Map(artifacts.weightSpecs.map((w) => [w.name, w.shape]));
  let matched = 0;
  for (const w of weights) {
    const got = have.get(`${w.layer}/${w.weight}`);
    if (!got) continue;
    matched++;
    if (got.join('x') !== w.shape.join('x')) throw new BackboneUnavailableError(`${source} does not fit ${entry.name}: ${w.layer}/${w.weight} has shape [${got}], the architecture needs [${w.shape}] (another width?)`);
  }
  if (matched < weights.length) throw new BackboneUnavailableError(`${source} does not fit ${entry.name}: it has ${matched} of the architecture's ${weights.length} weights`);
}

/**
 * Copies local weights into the cache under a zoo name (for offline machines): the Keras .h5 file (checked
 * against Keras' published hash where there is one), or a TF.js layers model folder of the same network.
 */
export async function importModel(source: string, name: string): Promise<{ dir: string; record: CacheRecord }> {
  const entry = ZOO.find((e) => e.name === name);
  if (!entry) throw new BackboneUnavailableError(`no zoo backbone named '${name}' (see tlearn models list)`);
  const src = path.resolve(source);
  const st = await fs.stat(src).catch(() => undefined);
  if (!st) throw new BackboneUnavailableError(`${source} does not exist`);
  const dir = entryDir(entry);
  const staging = tempPath(dir);
  await fs.mkdir(staging, { recursive: true });
  const files: Record<string, string> = {};
  try {
    if (st.isDirectory()) {
      const artifacts = await readLayersModel(src);
      if (!allLayerNames(artifacts.modelTopology).has(entry.cutAt)) throw new BackboneUnavailableError(`${source} does not look like ${entry.name}: it has no layer '${entry.cutAt}'`);
      await checkFolderFits(entry, artifacts, source);
      const json = JSON.parse(await fs.readFile(path.join(src, 'model.json'), 'utf8'));
      for (const rel of ['model.json', ...json.weightsManifest.flatMap((g: any) => g.paths as string[])]) {
        await fs.mkdir(path.dirname(path.join(staging, rel)), { recursive: true });
        await fs.copyFile(path.join(src, rel), path.join(staging, rel));
        files[rel] = await hashFile(path.join(staging, rel));
      }
    } else {
      await checkPublisherHash(entry, src);
      await kerasAppArtifacts(entry.app, src);
      await fs.copyFile(src, path.join(staging, entry.file));
      files[entry.file] = await hashFile(path.join(staging, entry.file));
    }
    const record: CacheRecord = { name: entry.name, url: resolveUrl(entry.url), origin: 'import', importedFrom: src, hashOrigin: entry.hash && !st.isDirectory() ? 'publisher' : 'import', files, createdAt: new Date().toISOString() };
    await writeFileAtomic(path.join(staging, RECORD_FILE), JSON.stringify(record, null, 2));
    await installFolder(staging, dir, async () => false);
    return { dir, record };
  } catch (e) {
    await fs.rm(staging, { recursive: true, force: true });
    throw e;
  }
}

export interface ZooStatus {
  entry: ZooEntry;
  cached: boolean;
  bytes: number;
  record?: CacheRecord;
}

export async function zooStatus(): Promise<ZooStatus[]> {
  const out: ZooStatus[] = [];
  for (const entry of ZOO) {
    const dir = entryDir(entry);
    const record = await readRecord(dir);
    let bytes = 0;
    if (record) for (const f of Object.keys(record.files)) bytes += (await fs.stat(path.join(dir, f)).catch(() => ({ size: 0 }))).size;
    out.push({ entry, cached: Boolean(record), bytes, record });
  }
  return out;
}
