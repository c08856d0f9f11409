/**
 * What every studio plugin is given: the open project (the folder of class folders), its state folder in
 * TLEARN_HOME (runs index, history, remembered decisions, action log), a logger, and a `jobs` slot that the
 * training job manager fills. A studio started without a project has `project` null until the page opens one.
 */
import { createHash } from 'node:crypto';
import { promises as fs, realpathSync } from 'node:fs';
import path from 'node:path';
import { tlearnHome } from '../util/home.js';
import { writeFileAtomic } from '../util/fs.js';
import type { Logger } from '../util/log.js';
import { HttpError } from '../serve/errors.js';

export interface StudioProject {
  /** The real path of the project folder (the folder of class folders). */
  root: string;
  /** Its display name (the folder's name). */
  name: string;
  /** TLEARN_HOME/studio/projects/<hash of root>/ */
  stateDir: string;
}

/** The training job manager (filled in by the train pages' plugin); the studio only needs to know it exists. */
export interface StudioJobs {
  /** Whether a job is running for the project (file actions stay allowed: training reads its own copy of the list). */
  busy?(): boolean;
  /** Called when the project changes (opened or closed). */
  onProject?(p: StudioProject | null): void | Promise<void>;
  [k: string]: unknown;
}

export interface StudioContext {
  project: StudioProject | null;
  logger: Logger;
  /** TLEARN_HOME/studio */
  home: string;
  jobs: StudioJobs;
  /** Opens (or switches to) a project folder; fires the jobs' onProject. */
  openProject(folder: string): Promise<StudioProject>;
  /** The open project, or a 409 telling the page to open one. */
  requireProject(): StudioProject;
}

export function studioHome(): string {
  return path.join(tlearnHome(), 'studio');
}

/** The state folder of a project: keyed by the hash of the folder's real path. */
export function projectStateDir(root: string, home = studioHome()): string {
  const key = createHash('sha256').update(root).digest('hex').slice(0, 16);
  return path.join(home, 'projects', key);
}

/** Files in a project's state folder (runs.json is shared with the training job manager). */
export const STATE_FILES = {
  /** [{id, outDir, mode, startedAt, status, testAccuracy?}] */
  runs: 'runs.json',
  /** The folder holding each run: runs/<id>/ */
  runsDir: 'runs',
  /** The file-action log (append-only JSONL). */
  journal: 'actions.jsonl',
  /** Images the user chose to keep as labelled: {"<class>/<file>": {at}} */
  keep: 'keep.json',
  /** {root, name, openedAt} */
  project: 'project.json',
} as const;

export async function describeProject(folder: string, home = studioHome()): Promise<StudioProject> {
  let root: string;
  try {
    root = realpathSync(path.resolve(folder));
  } catch {
    throw new HttpError(404, 'no such folder', `the folder ${folder} does not exist`);
  }
  const st = await fs.stat(root);
  if (!st.isDirectory()) throw new HttpError(400, 'not a folder', `${folder} is a file, not a folder of class folders`);
  const stateDir = projectStateDir(root, home);
  await fs.mkdir(stateDir, { recursive: true });
  await writeFileAtomic(path.join(stateDir, STATE_FILES.project), JSON.stringify({ root, name: path.basename(root), openedAt: new Date().toISOString() }, null, 2));
  return { root, name: path.basename(root), stateDir };
}

export async function readJson<T>(file: string, fallback: T): Promise<T> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch (e: any) {
    if (e.code === 'ENOENT') return fallback;
    throw e;
  }
}

/** Recently opened projects, newest first (from the state folders' project.json). */
export async function recentProjects(home = studioHome()): Promise<Array<{ root: string; name: string; openedAt: string; exists: boolean }>> {
  const dir = path.join(home, 'projects');
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const out = [];
  for (const n of names) {
    const p = await readJson<{ root?: string; name?: string; openedAt?: string } | null>(path.join(dir, n, STATE_FILES.project), null).catch(() => null);
    if (!p?.root) continue;
    const exists = await fs.stat(p.root).then((s) => s.isDirectory(), () => false);
    out.push({ root: p.root, name: p.name ?? path.basename(p.root), openedAt: p.openedAt ?? '', exists });
  }
  return out.sort((a, b) => b.openedAt.localeCompare(a.openedAt)).slice(0, 30);
}
