/**
 * The studio's training jobs: one training at a time per project, run in the server process (not the page) with
 * trainFromFolder, in a worker thread so the studio keeps answering while it trains. Every event of a run is kept in memory and appended to <run folder>/studio-events.jsonl, so a
 * page that is closed or reloaded gets the whole story again (replay, then live) and nothing is lost. Cancel goes
 * through an AbortController. The run list is the state dir's runs.json; a run that a killed studio left
 * 'running' is marked 'stopped' when the studio starts again, and Resume continues it
 * (trainFromFolder({ resume: outDir })): fine-tuning from its last checkpoint, transfer learning from its
 * cached features.
 */
import { createWriteStream, existsSync, promises as fs, type WriteStream } from 'node:fs';
import path from 'node:path';
import type { TrainingEvent } from '../engine/events.js';
import { loadImageFolder } from '../data/discover.js';
import { parseAugment } from '../image/augment.js';
import { timestamp } from '../train/run-folder.js';
import type { RunRequest } from '../train/types.js';
import { pidAlive } from '../util/tempfiles.js';
import { isOffered, offeredBackbones } from './backbones.js';
import { FINETUNE_DEFAULT_EPOCHS, TRANSFER_DEFAULT_EPOCHS } from './estimate.js';
import { RunsFile, type RunEntry, type RunStatus } from './runs-file.js';
import { trainInThread, type ThreadOutcome } from './train-thread.js';

export type { RunEntry, RunStatus };

export const EVENTS_FILE = 'studio-events.jsonl';

/** An event as stored and sent: its number in the run (for replay from a point) and when it happened (ms). */
export interface StoredEvent {
  seq: number;
  time: number;
  event: TrainingEvent;
}

export interface TrainSettings {
  mode: 'transfer' | 'finetune';
  /** A zoo name or a local model folder among the offered backbones. */
  backbone: string;
  epochs?: number;
  /** Fine-tuning only: random crops, flips, small turns and colour changes of the training photos. */
  augment?: boolean;
  /** Train even when the data check finds identical photos in two classes. */
  force?: boolean;
}

/** A refusal with the HTTP status it maps to and a message that says what to do. */
export class JobError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface JobsOptions {
  /** The project: the folder of class folders. */
  projectDir: string;
  /** The project's state folder (runs.json, runs/<id>/). */
  stateDir: string;
  /** Local backbone folders offered besides the installed zoo networks. */
  backbones?: string[];
  /** onnxruntime threads for training (default: all cores). */
  threads?: number;
}

type Listener = (e: StoredEvent | { status: RunEntry }) => void;

interface Active {
  entry: RunEntry;
  controller: AbortController;
  log: WriteStream;
  done: Promise<void>;
  /** Set when the studio closes: the run ends as 'stopped' (resumable), not 'cancelled'. */
  closing: boolean;
}

/** Progress events that come many times a second are stored at most this often (the last one always). */
const THROTTLE_MS = 200;

/** Data-check wording for people who do not use the command line. */
function plainError(message: string): string {
  return message
    .replace(/fix the data \(see tlearn check\), or pass --force to train anyway/, 'fix them on the Data page, or tick "Train anyway"')
    .replace(/\s*\(tlearn [^)]*\)/g, '');
}

export class JobManager {
  private runs: RunEntry[] = [];
  private readonly file: RunsFile;
  private active: Active | undefined;
  /** Events of the runs seen by this process, by run id. */
  private readonly memory = new Map<string, StoredEvent[]>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly lastStored = new Map<string, number>();

  private constructor(readonly o: JobsOptions) {
    this.file = new RunsFile(o.stateDir);
  }

  /** Opens the project's run list; a run left 'running' by a studio that is gone becomes 'stopped'. */
  static async open(o: JobsOptions): Promise<JobManager> {
    const m = new JobManager(o);
    m.runs = await m.file.read();
    let changed = false;
    for (const r of m.runs) {
      if (r.status === 'running' && !(r.pid && r.pid !== process.pid && pidAlive(r.pid))) {
        r.status = 'stopped';
        r.pid = undefined;
        changed = true;
      }
    }
    if (changed) await m.file.write(m.runs);
    return m;
  }

  list(): RunEntry[] {
    return this.runs.map((r) => ({ ...r }));
  }

  get(id: string): RunEntry {
    const r = this.runs.find((x) => x.id === id);
    if (!r) throw new JobError(404, `there is no run '${String(id).slice(0, 80)}' in this project`);
    return { ...r };
  }

  running(): RunEntry | undefined {
    return this.active ? { ...this.active.entry } : undefined;
  }

  /** A stopped or cancelled run can continue when its folder has its options and no final metrics. */
  resumable(r: RunEntry): boolean {
    return (r.status === 'stopped' || r.status === 'cancelled') && existsSync(path.join(r.outDir, 'options.json')) && !existsSync(path.join(r.outDir, 'metrics.json'));
  }

  private async checkSettings(s: TrainSettings): Promise<Required<Pick<TrainSettings, 'mode' | 'backbone'>> & TrainSettings> {
    if (s.mode !== 'transfer' && s.mode !== 'finetune') throw new JobError(400, `mode must be 'transfer' or 'finetune', not '${String(s.mode).slice(0, 40)}'`);
    const { backbones } = await offeredBackbones(this.o.backbones);
    if (typeof s.backbone !== 'string' || !isOffered(s.backbone, backbones)) throw new JobError(400, `'${String(s.backbone).slice(0, 80)}' is not one of the offered models; choose one from the list`);
    if (s.epochs !== undefined && !(Number.isInteger(s.epochs) && s.epochs >= 1 && s.epochs <= 1000)) throw new JobError(400, 'epochs must be a whole number from 1 to 1000');
    if (s.augment && s.mode !== 'finetune') throw new JobError(400, 'photo variations (augmentation) apply to fine-tuning only; choose fine-tune or turn them off');
    return s as any;
  }

  /** Starts a training; refuses while one is running. */
  async start(settings: TrainSettings): Promise<RunEntry> {
    if (this.active) throw new JobError(409, 'a training is already running in this project: wait for it to finish, or cancel it first');
    const s = await this.checkSettings(settings);
    const ds = await loadImageFolder(this.o.projectDir).catch((e) => {
      const one = /only one class with images \('(.*)'\)/.exec(e.message);
      if (one) throw new JobError(400, `training needs at least two classes with photos; this project has one ('${one[1]}'). Add a class and its photos on the Data page`);
      if (/has no sub-folders|no images found/.test(e.message)) throw new JobError(400, 'training needs at least two classes with photos; this project has none yet. Add classes and photos on the Data page');
      throw new JobError(400, `the project's photos cannot be read: ${e.message}`);
    });
    const counts = new Map<number, number>();
    for (const im of ds.images) counts.set(im.label, (counts.get(im.label) ?? 0) + 1);
    const usable = ds.classes.filter((_c, i) => (counts.get(i) ?? 0) > 0);
    if (usable.length < 2) throw new JobError(400, `training needs at least two classes with photos; this project has ${usable.length}. Add photos on the Data page`);
    const small = ds.classes.filter((_c, i) => (counts.get(i) ?? 0) < 3);
    if (small.length) throw new JobError(400, `every class needs at least 3 photos (some are held back to check the model); add more to: ${small.join(', ')}`);
    const id = this.freshId();
    const entry: RunEntry = {
      id,
      outDir: this.file.runDir(id),
      mode: s.mode,
      backbone: s.backbone,
      epochs: s.epochs ?? (s.mode === 'transfer' ? TRANSFER_DEFAULT_EPOCHS : FINETUNE_DEFAULT_EPOCHS),
      augment: Boolean(s.augment),
      startedAt: new Date().toISOString(),
      status: 'running',
      pid: process.pid,
      images: ds.images.length,
    };
    const request: RunRequest = {
      data: this.o.projectDir,
      out: entry.outDir,
      mode: s.mode,
      backbone: s.backbone,
      epochs: s.epochs,
      augment: s.mode === 'finetune' && s.augment ? parseAugment(true) : undefined,
      force: s.force || undefined,
      threads: this.o.threads,
    };
    await fs.mkdir(entry.outDir, { recursive: true });
    await this.adoptOthers();
    this.runs.unshift(entry);
    await this.file.write(this.runs);
    this.launch(entry, request);
    return { ...entry };
  }

  /** Continues a stopped (or cancelled) run from where it was. */
  async resume(id: string): Promise<RunEntry> {
    if (this.active) throw new JobError(409, 'a training is already running in this project: wait for it to finish, or cancel it first');
    const entry = this.runs.find((x) => x.id === id);
    if (!entry) throw new JobError(404, `there is no run '${String(id).slice(0, 80)}' in this project`);
    if (!this.resumable(entry)) throw new JobError(409, entry.status === 'done' ? 'this run has finished; there is nothing to resume' : `this run cannot be resumed (it is ${entry.status}${entry.status === 'running' ? '' : ', and its folder has no resumable state'}); start a new training instead`);
    await this.loadEvents(entry);
    entry.status = 'running';
    entry.pid = process.pid;
    entry.error = undefined;
    entry.endedAt = undefined;
    entry.resumedAt = [...(entry.resumedAt ?? []), new Date().toISOString()];
    await this.file.write(this.runs);
    this.launch(entry, { resume: entry.outDir, threads: this.o.threads });
    return { ...entry };
  }

  /** Asks the running training to stop at its next safe point; it ends as 'cancelled'. */
  cancel(id: string): RunEntry {
    const a = this.active;
    if (!a || a.entry.id !== id) throw new JobError(409, 'this run is not running');
    a.controller.abort();
    return { ...a.entry };
  }

  /** Resolves when the running training (if any) has ended. */
  async idle(): Promise<void> {
    await this.active?.done;
  }

  /** Stops a running training (it stays resumable: 'stopped') and waits for it; ends every event stream. */
  async close(): Promise<void> {
    const a = this.active;
    if (a) {
      a.closing = true;
      a.controller.abort();
      await a.done;
    }
    for (const set of this.listeners.values()) set.clear();
  }

  /**
   * The run's events after `afterSeq` (all with -1), then live ones until the run ends: `listener` gets events and
   * status changes; the returned function unsubscribes. `ended` resolves when the run is not (or no longer) running.
   */
  async subscribe(id: string, afterSeq: number, listener: Listener): Promise<{ unsubscribe: () => void; ended: Promise<void> }> {
    const entry = this.runs.find((x) => x.id === id);
    if (!entry) throw new JobError(404, `there is no run '${String(id).slice(0, 80)}' in this project`);
    const past = await this.loadEvents(entry);
    for (const e of past) if (e.seq > afterSeq) listener(e);
    listener({ status: { ...entry } });
    if (!this.active || this.active.entry.id !== id) return { unsubscribe: () => {}, ended: Promise.resolve() };
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(listener);
    const ended = this.active.done;
    return { unsubscribe: () => set!.delete(listener), ended };
  }

  /** Events of a run: from memory, or read once from its events file. */
  async events(id: string): Promise<StoredEvent[]> {
    const entry = this.runs.find((x) => x.id === id);
    if (!entry) throw new JobError(404, `there is no run '${String(id).slice(0, 80)}' in this project`);
    return [...(await this.loadEvents(entry))];
  }

  private async loadEvents(entry: RunEntry): Promise<StoredEvent[]> {
    const have = this.memory.get(entry.id);
    if (have) return have;
    const list: StoredEvent[] = [];
    const text = await fs.readFile(path.join(entry.outDir, EVENTS_FILE), 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        list.push(JSON.parse(line));
      } catch {
        // a line cut short by a killed studio: the rest of the file is still good
      }
    }
    this.memory.set(entry.id, list);
    return list;
  }

  /** Runs another tool wrote into runs.json meanwhile (a copied run, a test) are kept, not overwritten. */
  private async adoptOthers(): Promise<void> {
    const known = new Set(this.runs.map((r) => r.id));
    for (const r of await this.file.read()) if (!known.has(r.id)) this.runs.push(r);
    this.runs.sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  }

  private freshId(): string {
    const base = timestamp();
    for (let i = 1; ; i++) {
      const id = i === 1 ? base : `${base}-${i}`;
      if (!this.runs.some((r) => r.id === id) && !existsSync(this.file.runDir(id))) return id;
    }
  }

  private launch(entry: RunEntry, request: RunRequest): void {
    const controller = new AbortController();
    const log = createWriteStream(path.join(entry.outDir, EVENTS_FILE), { flags: 'a' });
    log.on('error', () => {}); // a full disk must not take the studio down; the events stay in memory
    const events = this.memory.get(entry.id) ?? [];
    this.memory.set(entry.id, events);
    const a: Active = { entry, controller, log, done: Promise.resolve(), closing: false };
    this.active = a;
    const emit = (event: TrainingEvent) => this.record(entry, events, log, event);
    this.notify(entry);
    a.done = (async () => {
      let r: ThreadOutcome;
      try {
        r = await trainInThread(request, emit, controller.signal);
      } catch (e: any) {
        r = { outcome: 'failed', error: e?.message ?? String(e) };
      }
      const status: RunStatus = r.outcome === 'cancelled' && a.closing ? 'stopped' : r.outcome;
      entry.status = status;
      entry.endedAt = new Date().toISOString();
      entry.pid = undefined;
      if (r.outcome === 'done') {
        entry.testAccuracy = r.testAccuracy;
        entry.valAccuracy = r.valAccuracy;
      }
      if (r.error) entry.error = plainError(r.error);
      await new Promise<void>((resolve) => log.end(resolve));
      await this.file.write(this.runs).catch(() => {});
      this.active = undefined;
      this.notify(entry);
      this.listeners.delete(entry.id);
    })();
  }

  private record(entry: RunEntry, events: StoredEvent[], log: WriteStream, event: TrainingEvent): void {
    const now = Date.now();
    if (event.type === 'extract' || event.type === 'batch') {
      const key = `${entry.id}:${event.type}`;
      const last = this.lastStored.get(key) ?? 0;
      if (now - last < THROTTLE_MS && event.done < event.total) return;
      this.lastStored.set(key, now);
    }
    // kept as it reads back from the file and the wire (NaN as null, no undefined fields), so replays are equal
    const line = JSON.stringify({ seq: (events.at(-1)?.seq ?? -1) + 1, time: now, event } satisfies StoredEvent);
    const stored: StoredEvent = JSON.parse(line);
    events.push(stored);
    log.write(`${line}\n`);
    for (const l of this.listeners.get(entry.id) ?? []) l(stored);
  }

  private notify(entry: RunEntry): void {
    for (const l of this.listeners.get(entry.id) ?? []) l({ status: { ...entry } });
  }
}
