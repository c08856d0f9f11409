/**
 * What the commands call with their <data> argument: a path always wins; otherwise a dataset name (a registry
 * name, downloaded on first use, or a name given with `tlearn datasets import`). Also expands named exclusion
 * lists such as `--exclude notebook` for caltech101.
 */
import { promises as fs } from 'node:fs';
import { DatasetError } from '../data/discover.js';
import { silentLogger, type Logger } from '../util/log.js';
import { findEntry, isDatasetName, loadRegistry, type DatasetEntry } from './registry.js';
import { DatasetUnavailableError, getDataset, readDatasetRecord, recordFolder, type DatasetRecord } from './store.js';

export interface ResolvedData {
  /** The folder to read: the path as given, or the named dataset's folder. */
  folder: string;
  /** Set when the argument was a dataset name. */
  name?: string;
  entry?: DatasetEntry;
  record?: DatasetRecord;
  /** Named class lists for --exclude (e.g. notebook → the five classes the Keras notebook leaves out). */
  presets: Record<string, string[]>;
}

export interface ResolveOptions {
  /** Download a registry dataset that is not in the store yet (default true). */
  download?: boolean;
  logger?: Logger;
}

function presetsOf(entry?: DatasetEntry): Record<string, string[]> {
  return Object.fromEntries(Object.entries(entry?.presets ?? {}).map(([k, v]) => [k, v.classes]));
}

/**
 * Resolves a <data> argument: an existing path as it is, else a dataset name (downloading it if needed). An
 * argument that cannot be a name (it has a '/', an upper-case letter...) is returned as the path it is.
 */
export async function resolveDataArg(arg: string, o: ResolveOptions = {}): Promise<ResolvedData> {
  const log = o.logger ?? silentLogger;
  if (await fs.stat(arg).catch(() => undefined)) return { folder: arg, presets: {} };
  const name = arg.trim().toLowerCase();
  // Not a name: a path that does not exist, which the command's own loader reports in its terms.
  if (!isDatasetName(name)) return { folder: arg, presets: {} };
  const entry = await findEntry(name);
  let record = await readDatasetRecord(name);
  if (!entry && !record) {
    const names = (await loadRegistry()).map((e) => e.name).join(', ');
    throw new DatasetError(`${arg} is neither a folder nor a dataset name (names: ${names}, and those given with tlearn datasets import; see tlearn datasets list)`);
  }
  if (!record) {
    if (o.download === false) throw new DatasetUnavailableError(`dataset ${name} is not in the store yet: tlearn datasets get ${name}`);
    record = await getDataset(entry!, { logger: log });
  }
  const folder = recordFolder(name, record);
  if (!(await fs.stat(folder).catch(() => undefined))?.isDirectory()) {
    const how = record.origin === 'link' ? `was imported by reference from ${record.source}, which no longer exists` : `has lost its folder ${folder}`;
    const again = entry ? `, or get a fresh copy with tlearn datasets get ${name} --force` : '';
    throw new DatasetUnavailableError(`dataset ${name} ${how}. If it moved, import it again from its new place: tlearn datasets import <folder|archive> --name ${name}${again}`);
  }
  const from = record.origin === 'link' ? `(the folder imported by reference)` : record.origin === 'import' ? `(imported from ${record.source})` : `(downloaded from ${record.source})`;
  log.info(`dataset ${name}: ${folder} ${from}`);
  return { folder, name, entry, record, presets: presetsOf(entry) };
}

/** --exclude with named lists expanded (e.g. 'notebook' for caltech101); other names are kept as given. */
export function expandExclude(exclude: string[] | undefined, data: ResolvedData): string[] | undefined {
  if (!exclude) return exclude;
  const out: string[] = [];
  for (const c of exclude) for (const x of data.presets[c] ?? [c]) if (!out.includes(x)) out.push(x);
  return out;
}
