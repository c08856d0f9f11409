/**
 * The action log: every file action of the studio (add, rename, merge, delete a class; upload, remove, move
 * images) is a list of steps written to <state dir>/actions.jsonl, flushed to disk (fsync), before the first
 * step happens. Each step is one rename (atomic on one file system) or one mkdir/rmdir, and can be repeated
 * safely, so an action cut short (a killed studio, a power cut) is completed at the next start: every image ends
 * up in exactly one place. A move never overwrites a file. Undo runs the inverse steps as a new action; the
 * files are renamed back, so they are byte-identical.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { HttpError } from '../serve/errors.js';
import type { Logger } from '../util/log.js';
import { STATE_FILES, type StudioProject } from './context.js';

/** Hidden name prefix of uploaded files before their action renames them into place. */
export const UPLOAD_PREFIX = '.tlearn-upload-';
/** The folder inside the project where deleted things go (hidden: training skips dot-folders). */
export const TRASH = '.tlearn-trash';

export type Step = { op: 'move'; from: string; to: string } | { op: 'mkdir'; path: string } | { op: 'rmdir'; path: string };

export interface BeginRecord {
  type: 'begin';
  id: string;
  kind: string;
  /** What the page shows, in plain words. */
  title: string;
  steps: Step[];
  at: string;
  /** Set on an undo: the action it undoes. */
  undoOf?: string;
}

export interface EndRecord {
  type: 'end';
  id: string;
  at: string;
  /** Completed at a restart after an interruption. */
  recovered?: boolean;
  error?: string;
}

type JournalRecord = BeginRecord | EndRecord;

export interface ActionSummary {
  id: string;
  kind: string;
  title: string;
  at: string;
  steps: number;
  undoOf?: string;
  undone: boolean;
  /** Completed at a restart. */
  recovered: boolean;
  /** It ended with an error part way (some steps not done). */
  failed: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function newActionId(): string {
  return `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

async function lexists(p: string): Promise<boolean> {
  return fs.lstat(p).then(() => true, () => false);
}

/** The inverse of a list of steps (undo), last step first. */
export function inverseSteps(steps: Step[]): Step[] {
  return [...steps].reverse().map((s): Step => (s.op === 'move' ? { op: 'move', from: s.to, to: s.from } : s.op === 'mkdir' ? { op: 'rmdir', path: s.path } : { op: 'mkdir', path: s.path }));
}

export class Journal {
  private records: JournalRecord[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private readonly file: string;
  /** Milliseconds to wait before each step (tests: to kill the studio in the middle of an action). */
  private readonly stepDelayMs = Number(process.env.TLEARN_STUDIO_TEST_STEP_DELAY_MS) || 0;

  private constructor(
    readonly project: StudioProject,
    private readonly log?: Logger,
  ) {
    this.file = path.join(project.stateDir, STATE_FILES.journal);
  }

  /** Reads the log and completes any action that was interrupted. */
  static async open(project: StudioProject, log?: Logger): Promise<Journal> {
    const j = new Journal(project, log);
    await j.load();
    await j.recover();
    return j;
  }

  private async load(): Promise<void> {
    const text = await fs.readFile(this.file, 'utf8').catch((e) => (e.code === 'ENOENT' ? '' : Promise.reject(e)));
    // a line cut short by a crash: end it, so the next record starts on a line of its own
    if (text && !text.endsWith('\n')) await fs.appendFile(this.file, '\n');
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        this.records.push(JSON.parse(line));
      } catch {
        // a line cut short by a crash while it was written: its action had not started (steps come after the flush)
      }
    }
  }

  private async append(r: JournalRecord): Promise<void> {
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    const h = await fs.open(this.file, 'a');
    try {
      await h.write(`${JSON.stringify(r)}\n`);
      await h.sync();
    } finally {
      await h.close();
    }
    this.records.push(r);
  }

  private abs(rel: string): string {
    return path.join(this.project.root, ...rel.split('/'));
  }

  /** Does one step; repeating a done step does nothing. Never overwrites. */
  private async applyStep(s: Step): Promise<void> {
    if (s.op === 'mkdir') {
      await fs.mkdir(this.abs(s.path), { recursive: true });
      return;
    }
    if (s.op === 'rmdir') {
      await fs.rmdir(this.abs(s.path)).catch((e) => {
        if (e.code !== 'ENOENT') throw e;
      });
      return;
    }
    const from = this.abs(s.from);
    const to = this.abs(s.to);
    const [hasFrom, hasTo] = await Promise.all([lexists(from), lexists(to)]);
    if (!hasFrom && hasTo) return; // done already
    if (!hasFrom) throw new Error(`${s.from} is missing (nothing to move to ${s.to})`);
    if (hasTo) throw new Error(`${s.to} already exists; not overwriting it with ${s.from}`);
    await fs.mkdir(path.dirname(to), { recursive: true });
    await fs.rename(from, to);
  }

  private async execute(b: BeginRecord): Promise<void> {
    for (const s of b.steps) {
      if (this.stepDelayMs) await sleep(this.stepDelayMs);
      await this.applyStep(s);
    }
  }

  /** Completes every action that began and did not end. */
  async recover(): Promise<number> {
    const ended = new Set(this.records.filter((r) => r.type === 'end').map((r) => r.id));
    const open = this.records.filter((r): r is BeginRecord => r.type === 'begin' && !ended.has(r.id));
    for (const b of open) {
      let error: string | undefined;
      for (const s of b.steps) {
        try {
          await this.applyStep(s);
        } catch (e: any) {
          error = e.message;
          this.log?.warn(`studio: completing '${b.title}' after an interruption: ${e.message}`);
        }
      }
      this.log?.info(`studio: completed an interrupted action: ${b.title}`);
      await this.append({ type: 'end', id: b.id, at: new Date().toISOString(), recovered: true, ...(error ? { error } : {}) });
    }
    return open.length;
  }

  /** Runs one action (after any running one): writes its steps to the log, then does them. */
  run(kind: string, title: string, steps: Step[], o: { id?: string; undoOf?: string; prepare?: () => Promise<Step[]> } = {}): Promise<ActionSummary> {
    const go = async () => {
      const planned = o.prepare ? await o.prepare() : steps;
      const b: BeginRecord = { type: 'begin', id: o.id ?? newActionId(), kind, title, steps: planned, at: new Date().toISOString(), ...(o.undoOf ? { undoOf: o.undoOf } : {}) };
      await this.append(b);
      try {
        await this.execute(b);
      } catch (e: any) {
        await this.append({ type: 'end', id: b.id, at: new Date().toISOString(), error: e.message });
        throw new HttpError(409, 'could not finish', `${title}: ${e.message}. The steps done so far are kept; Undo puts them back`);
      }
      await this.append({ type: 'end', id: b.id, at: new Date().toISOString() });
      return this.summary(b);
    };
    const p = this.queue.then(go, go);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private begins(): BeginRecord[] {
    return this.records.filter((r): r is BeginRecord => r.type === 'begin');
  }

  private summary(b: BeginRecord): ActionSummary {
    const end = this.records.find((r): r is EndRecord => r.type === 'end' && r.id === b.id);
    const undone = this.begins().some((x) => x.undoOf === b.id && this.records.some((r) => r.type === 'end' && r.id === x.id && !(r as EndRecord).error));
    return { id: b.id, kind: b.kind, title: b.title, at: b.at, steps: b.steps.length, undoOf: b.undoOf, undone, recovered: !!end?.recovered, failed: !!end?.error };
  }

  /** The steps an action planned. */
  stepsOf(id: string): Step[] {
    return this.begins().find((b) => b.id === id)?.steps ?? [];
  }

  /** The latest actions, newest first. */
  list(limit = 50): ActionSummary[] {
    return this.begins().slice(-limit).reverse().map((b) => this.summary(b));
  }

  /** Undoes an action: its steps inverted, as a new action, when every file is still where the action left it. */
  async undo(id: string): Promise<ActionSummary> {
    const b = this.begins().find((x) => x.id === id);
    if (!b) throw new HttpError(404, 'no such action', `no action '${String(id).slice(0, 60)}' in this project's history`);
    if (b.undoOf) throw new HttpError(409, 'cannot undo', 'this is already an undo; do the action again instead');
    const undoId = newActionId();
    return this.run('undo', `Undo: ${b.title}`, [], {
      id: undoId,
      undoOf: id,
      prepare: async () => {
        if (this.summary(b).undone) throw new HttpError(409, 'already undone', `'${b.title}' was already undone`);
        // an added file goes to the trash rather than back to its upload name (which would be swept away)
        const inv = inverseSteps(b.steps).map((s): Step => (s.op === 'move' && path.basename(s.to).startsWith(UPLOAD_PREFIX) ? { op: 'move', from: s.from, to: `${TRASH}/${undoId}/${s.from}` } : s));
        for (const s of inv) {
          if (s.op === 'rmdir') {
            const left = await fs.readdir(this.abs(s.path)).catch(() => [] as string[]);
            if (left.length) throw new HttpError(409, 'cannot undo', `the folder ${s.path} is not empty any more (${left.length} file${left.length > 1 ? 's' : ''}); remove them first`);
          }
          if (s.op !== 'move') continue;
          if (!(await lexists(this.abs(s.from)))) throw new HttpError(409, 'cannot undo', `${s.from} is no longer there (changed since '${b.title}'), so it cannot be put back`);
          if (await lexists(this.abs(s.to))) throw new HttpError(409, 'cannot undo', `${s.to} exists again, and undo never overwrites a file: rename or remove it first`);
        }
        return inv;
      },
    });
  }
}
