/**
 * The run folder as a unit of work: its options are recorded (options.json) so a run can be resumed
 * (`--resume`, same options, same split, from the last checkpoint) or repeated (`--from`, same options on the
 * data as it is now, with the differences printed); it is locked while a process writes it; leftovers of
 * killed processes are swept when a run starts; and a new run refuses a folder that holds an unfinished one.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { DatasetError } from '../data/discover.js';
import { exists, writeFileAtomic } from '../util/fs.js';
import { tlearnHome } from '../util/home.js';
import { lockFolder } from '../util/lock.js';
import type { Logger } from '../util/log.js';
import { sweepTempFiles } from '../util/tempfiles.js';
import { VERSION } from '../version.js';
import type { RunRequest, TrainRunOptions } from './types.js';

export type RunCommand = 'train' | 'compare';

export const OPTIONS_FILE = 'options.json';
/** The training loop's checkpoint inside a run folder (scratch and fine-tuning); compare keeps it in scratch/. */
export const STATE_FILE = path.join('checkpoint', 'training-state.bin');

export interface RecordedRun {
  tlearnVersion: string;
  command: RunCommand;
  createdAt: string;
  options: TrainRunOptions;
}

/** Options that only say how to run, not what: they may differ when a run is resumed. */
const RESUME_OVERRIDABLE = new Set(['threads', 'logger', 'onEvent', 'signal', 'resume', 'quiet']);
/** Never recorded. */
const NOT_RECORDED = new Set(['logger', 'onEvent', 'signal', 'resume', 'from']);

export function timestamp(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, '').replace(/:/g, '-');
}

/** The run's finished marker: metrics.json for train, compare.json for compare. */
function finishedFile(command: RunCommand): string {
  return command === 'train' ? 'metrics.json' : 'compare.json';
}

export async function readRecordedRun(dir: string): Promise<RecordedRun> {
  const file = path.join(dir, OPTIONS_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new DatasetError(`${dir} is not a tlearn run folder (it has no ${OPTIONS_FILE})`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new DatasetError(`${file} is not readable JSON`);
  }
}

export function recordableOptions(o: TrainRunOptions): TrainRunOptions {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined && !NOT_RECORDED.has(k)) out[k] = v;
  out.data = path.resolve(o.data);
  return out as unknown as TrainRunOptions;
}

export interface ResolvedRun {
  options: TrainRunOptions;
  resume: boolean;
  /** The run repeated by --from. */
  from?: { dir: string; recorded: RecordedRun };
}

/** The options a run goes by: the given ones, or a recorded run's (--resume), or a recorded run's with changes (--from). */
export async function resolveRunOptions(command: RunCommand, o: RunRequest, log: Logger): Promise<ResolvedRun> {
  if (o.resume && o.from) throw new DatasetError('--resume and --from cannot be used together');
  const src = o.resume ?? o.from;
  if (!src) {
    if (!o.data) throw new DatasetError(`no dataset folder given (tlearn ${command} <data>, or --resume / --from <run folder>)`);
    return { options: o as TrainRunOptions, resume: false };
  }
  const dir = path.resolve(src);
  const recorded = await readRecordedRun(dir);
  if (recorded.command !== command) throw new DatasetError(`${src} is a ${recorded.command} run; use tlearn ${recorded.command} ${o.resume ? '--resume' : '--from'} ${src}`);
  if (recorded.tlearnVersion !== VERSION) log.warn(`${src} was recorded by tlearn ${recorded.tlearnVersion}; this is ${VERSION}, so results may differ`);
  if (o.resume) {
    if (await exists(path.join(dir, finishedFile(command)))) throw new DatasetError(`${src} has finished (${finishedFile(command)} is there); nothing to resume. To run it again: tlearn ${command} --from ${src}`);
    const changed = Object.entries(o).filter(([k, v]) => v !== undefined && !RESUME_OVERRIDABLE.has(k)).map(([k]) => k);
    if (changed.length) throw new DatasetError(`--resume continues a run with its recorded options; it cannot change ${changed.join(', ')} (to start a new run with changes: tlearn ${command} --from ${src} ...)`);
    return { options: { ...recorded.options, threads: o.threads ?? recorded.options.threads, logger: o.logger, onEvent: o.onEvent, signal: o.signal, out: dir }, resume: true };
  }
  const given = Object.fromEntries(Object.entries(o).filter(([k, v]) => v !== undefined && k !== 'from'));
  return { options: { ...recorded.options, out: undefined, ...given }, resume: false, from: { dir, recorded } };
}

/** A new folder under runs/ named by the time (a suffix when another run took that name in the same second). */
async function freshRunFolder(prefix: string): Promise<string> {
  await fs.mkdir(path.resolve('runs'), { recursive: true });
  const base = path.resolve('runs', `${prefix}${timestamp()}`);
  for (let i = 1; ; i++) {
    const dir = i === 1 ? base : `${base}-${i}`;
    try {
      await fs.mkdir(dir);
      return dir;
    } catch (e: any) {
      if (e.code !== 'EEXIST') throw e;
    }
  }
}

/** Checkpoint files of an unfinished run in `dir`, if any. */
async function unfinishedWork(dir: string): Promise<string | undefined> {
  for (const f of [STATE_FILE, path.join('scratch', STATE_FILE)]) if (await exists(path.join(dir, f))) return path.join(dir, f);
  return undefined;
}

export interface RunFolderLock {
  outDir: string;
  release(): Promise<void>;
  /**
   * Releases the folder and, when this run made it, removes it again as long as it holds only what a run writes
   * before training (split.json, options.json): a run that failed on its data leaves no empty run folder behind.
   */
  abandon(): Promise<void>;
}

/** What a run writes before it trains; a folder holding nothing else is not worth keeping when the run fails. */
const BEFORE_TRAINING = ['split.json', OPTIONS_FILE];

async function removeIfUnused(dir: string, parent: string | undefined): Promise<void> {
  try {
    const left = await fs.readdir(dir);
    if (left.some((f) => !BEFORE_TRAINING.includes(f))) return;
    for (const f of left) await fs.rm(path.join(dir, f), { force: true });
    await fs.rmdir(dir);
    // runs/ itself, when this run made it and nothing else is in it
    if (parent) await fs.rmdir(parent).catch(() => {});
  } catch {
    // kept: removing is a courtesy, never a reason to hide the run's own error
  }
}

/** Creates (or, resuming, reopens) and locks the run folder, and sweeps leftovers of killed processes. */
export async function openRunFolder(command: RunCommand, o: TrainRunOptions, resume: boolean, log: Logger): Promise<RunFolderLock> {
  const runsExisted = o.out ? true : await exists(path.resolve('runs'));
  const made = o.out ? !(await exists(path.resolve(o.out))) : true;
  const outDir = o.out ? path.resolve(o.out) : await freshRunFolder(command === 'compare' ? 'compare-' : '');
  const release = await lockFolder(outDir, `tlearn ${command}`);
  const abandon = async () => {
    await release();
    if (made && !resume) await removeIfUnused(outDir, runsExisted ? undefined : path.resolve('runs'));
  };
  try {
    if (!resume) {
      const work = await unfinishedWork(outDir);
      if (work) throw new DatasetError(`${outDir} holds an unfinished run (${path.relative(outDir, work)}); continue it with: tlearn ${command} --resume ${outDir} (or choose another --out, or delete the folder)`);
    }
    // a run folder is shallow (model/, checkpoint/, scratch/...); --out may be any folder, so do not walk far
    const swept = [...(await sweepTempFiles(tlearnHome())), ...(await sweepTempFiles(outDir, 3))];
    if (swept.length) log.info(`removed ${swept.length} temporary file${swept.length > 1 ? 's' : ''} left by stopped processes (${(swept.reduce((a, t) => a + t.bytes, 0) / 1e6).toFixed(1)} MB)`);
  } catch (e) {
    await abandon();
    throw e;
  }
  return { outDir, release, abandon };
}

export async function writeRecordedRun(outDir: string, command: RunCommand, o: TrainRunOptions): Promise<void> {
  const record: RecordedRun = { tlearnVersion: VERSION, command, createdAt: new Date().toISOString(), options: recordableOptions(o) };
  await writeFileAtomic(path.join(outDir, OPTIONS_FILE), JSON.stringify(record, null, 2));
}
