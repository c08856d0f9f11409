/**
 * One call for the whole run: discover → split → train a model (transfer learning on cached features by
 * default, or a CNN from scratch) → test metrics → a shipped model, with everything in the run folder.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { loadImageFolder, DatasetError, type ImageFolder } from '../data/discover.js';
import { assertSplitUsable, splitDataset, splitToJson, type DatasetSplit, type SplitFile } from '../data/split.js';
import { formatSummary, summarizeDataset } from '../data/summary.js';
import { writeFileAtomic } from '../util/fs.js';
import { auditDataset, formatAudit, type DatasetAudit } from '../data/audit.js';
import { blockingProblems } from '../data/check.js';
import { ContentHashIndex } from '../data/hash-index.js';
import { diffSplits, readSplitFile, splitFromFile } from '../data/split-file.js';
import type { Logger } from '../util/log.js';
import { InterruptedError, setResumeCommand, shellQuote, whileStoppable } from '../util/interrupt.js';
import type { EpochLog } from '../engine/fit.js';
import { RunEvents, type TrainingEvent } from '../engine/events.js';
import { renderTrainingEvents } from '../engine/event-render.js';
import { runScratch } from './modes/scratch.js';
import { runTransfer } from './modes/transfer.js';
import { runFinetune } from './modes/finetune.js';
import { withTta } from './tta.js';
import { checkNetworkOptions } from '../engine/network.js';
import { calibrateOutcome } from './calibrate.js';
import { writeRunFolder, type RunFolder, type RunMetrics } from './outcome.js';
import { openRunFolder, resolveRunOptions, STATE_FILE, timestamp, writeRecordedRun, type RunCommand } from './run-folder.js';
import { NETWORK_ONLY_OPTIONS, type ModelOutcome, type RunRequest, type TrainMode, type TrainRunOptions } from './types.js';
import type { ReportFiles } from '../report/html.js';
import { describeExclusion, excludeFromSplit, readExcludeList, type Exclusion } from './exclude-files.js';
import { labelIssuesForFolder } from './label-issues.js';

export type { RunMetrics, TrainMode, TrainRunOptions, RunRequest };
export { timestamp };

export interface TrainRunResult {
  outDir: string;
  metrics: RunMetrics;
  history: EpochLog[];
  /** report.html and the PNG plots next to it. */
  report: ReportFiles;
}

export interface PreparedData {
  ds: ImageFolder;
  split: DatasetSplit;
  audit: DatasetAudit;
  outDir: string;
  timings: Record<string, number>;
  /** Images left out of train and val (--exclude-files, --drop-label-issues). */
  exclusion?: Exclusion;
}

/** --exclude-files / --drop-label-issues: the images to leave out of train and val, and why. */
async function excludedImages(o: TrainRunOptions, ds: ImageFolder, split: DatasetSplit, log: Logger): Promise<{ split: DatasetSplit; exclusion?: Exclusion }> {
  if (o.excludeFiles && o.dropLabelIssues) throw new DatasetError('--exclude-files and --drop-label-issues: give one or the other');
  let r: { split: DatasetSplit; exclusion: Exclusion } | undefined;
  if (o.excludeFiles) {
    r = excludeFromSplit(ds, split, await readExcludeList(o.excludeFiles), o.excludeFiles, `listed in ${o.excludeFiles}`);
  } else if (o.dropLabelIssues) {
    log.info('looking for wrong labels first (check --labels) to leave them out of train and val');
    const found = await labelIssuesForFolder(o.data, { exclude: o.exclude, backbone: o.backbone, cutAt: o.cutAt, preprocessing: o.preprocessing, resize: o.resize, weights: o.weights, kernel: o.kernel, seed: o.seed, split: o.split, splitMode: o.splitMode, cache: o.cache, threads: o.threads, logger: log });
    r = excludeFromSplit(ds, split, found.issues, 'check --labels', `flagged by check --labels (${found.backbone.name}, ${found.folds} folds): likely wrong labels, near-duplicates with another label, outliers`);
  }
  if (!r) return { split };
  log.info(describeExclusion(r.exclusion));
  for (const f of r.exclusion.notFound.slice(0, 5)) log.warn(`--exclude-files: ${f} is not an image of the dataset`);
  if (!r.split.train.length || !r.split.val.length) throw new DatasetError(`leaving out the listed images empties the ${r.split.train.length ? 'val' : 'train'} split`);
  return r;
}

/**
 * Discovers and splits the dataset (or takes the recorded split), creates the run folder, writes split.json and
 * audits the data; stops on label conflicts and symbolic link loops unless `o.force`. With a run's events, it
 * emits 'run-start' (as `mode`, default o.mode) once the split is known, and the data stage.
 */
export async function prepareData(o: TrainRunOptions, out: RunEvents | Logger, recorded?: SplitFile, mode?: string): Promise<PreparedData> {
  const ev = out instanceof RunEvents ? out : new RunEvents(renderTrainingEvents(out));
  const log = ev.logger();
  let t = performance.now();
  const ds = await loadImageFolder(o.data, { exclude: o.exclude });
  for (const w of ds.warnings) log.warn(w);
  const discover = (performance.now() - t) / 1000;
  t = performance.now();
  const split = recorded ? splitFromFile(recorded, ds) : splitDataset(ds, { fractions: o.split, seed: o.seed, mode: o.splitMode });
  assertSplitUsable(split, ds.images.length);
  const outDir = path.resolve(o.out ?? path.join('runs', timestamp()));
  await fs.mkdir(outDir, { recursive: true });
  if (!recorded) await writeFileAtomic(path.join(outDir, 'split.json'), JSON.stringify(splitToJson(ds, split)));
  ev.emit({ type: 'run-start', mode: mode ?? o.mode ?? 'transfer', outDir, classes: ds.classes, counts: { train: split.train.length, val: split.val.length, test: split.test.length }, resumed: Boolean(recorded) });
  ev.emit({ type: 'stage', stage: 'data', state: 'start' });
  for (const line of formatSummary(summarizeDataset(ds, split))) log.info(line);
  for (const s of ds.skipped) log.info(`  skipped ${s.path}: ${s.reason}`);
  const splitSeconds = (performance.now() - t) / 1000;
  t = performance.now();
  const audit = await auditDataset(ds, split, await ContentHashIndex.open());
  for (const line of formatAudit(audit, ds.root)) log.info(line);
  if (audit.crossSplit) log.warn(`${audit.crossSplit} group${audit.crossSplit > 1 ? 's' : ''} of identical images span the train/val/test splits: test accuracy will be optimistic`);
  const blocking = blockingProblems(ds, audit);
  if (blocking.length && !o.force) {
    throw new DatasetError(`the data check found ${blocking.length > 1 ? 'problems' : 'a problem'} that would make the model or its test accuracy wrong:\n${blocking.map((b) => `  ${b}`).join('\n')}\nfix the data (see tlearn check), or pass --force to train anyway`);
  }
  for (const b of blocking) log.warn(`${b} (going on: --force)`);
  const auditSeconds = (performance.now() - t) / 1000;
  t = performance.now();
  const ex = await excludedImages(o, ds, split, log);
  const timings: Record<string, number> = { discover, split: splitSeconds, audit: auditSeconds };
  if (ex.exclusion) timings.exclude = (performance.now() - t) / 1000;
  ev.emit({ type: 'stage', stage: 'data', state: 'end', seconds: Object.values(timings).reduce((x, y) => x + y, 0) });
  return { ds, split: ex.split, outDir, audit, exclusion: ex.exclusion, timings };
}

export interface StartedRun extends PreparedData {
  o: TrainRunOptions;
  resume: boolean;
  /** The run's events, with its signal. */
  events: RunEvents;
  /**
   * Ends the run: 'done' removes its resumable state; 'stopped' keeps it to resume; 'failed' (an error) removes a
   * folder this run made and nothing was trained into (RunFolderLock.abandon); each releases the folder.
   */
  finish(outcome: 'done' | 'stopped' | 'failed'): Promise<void>;
}

/** Resolves the options (--resume, --from), checks them, opens and locks the run folder, prepares the data and records the run. */
export async function startRun(command: RunCommand, request: RunRequest, ev: RunEvents, check?: (o: TrainRunOptions) => void): Promise<StartedRun> {
  const log = ev.logger();
  const { options, resume, from } = await resolveRunOptions(command, request, log);
  // options that cannot work are refused before anything is read or written
  check?.(options);
  const folder = await openRunFolder(command, options, resume, log);
  const o: TrainRunOptions = { ...options, out: folder.outDir, signal: ev.signal };
  try {
    if (resume) log.info(`resuming ${folder.outDir} with its recorded options and split`);
    const recorded = resume ? await readSplitFile(path.join(folder.outDir, 'split.json')) : undefined;
    const prepared = await prepareData(o, ev, recorded, command === 'compare' ? 'compare' : undefined);
    if (from) {
      const diff = diffSplits(await readSplitFile(path.join(from.dir, 'split.json')), splitToJson(prepared.ds, prepared.split));
      if (diff.length) {
        log.warn(`the data differs from ${from.dir}'s:`);
        for (const d of diff) log.info(`  ${d}`);
      } else log.info(`same data and split as ${from.dir}`);
    }
    if (!resume) await writeRecordedRun(folder.outDir, command, o);
    setResumeCommand(`tlearn ${command} --resume ${shellQuote(folder.outDir)}`);
    return {
      ...prepared,
      o,
      resume,
      events: ev,
      finish: async (outcome) => {
        setResumeCommand(undefined);
        if (outcome === 'done') {
          for (const f of [STATE_FILE, path.join('scratch', STATE_FILE)]) {
            await fs.rm(path.join(folder.outDir, f), { force: true });
            await fs.rmdir(path.dirname(path.join(folder.outDir, f))).catch(() => {}); // when empty
          }
        }
        await (outcome === 'failed' ? folder.abandon() : folder.release());
      },
    };
  } catch (e) {
    // failed before training (the data check, --from's folder, a stop): a folder this run made goes again
    await folder.abandon();
    throw e;
  }
}

/**
 * Runs `fn` for a started run, ending it either way; while it runs, Ctrl-C and requestStop() stop it through its
 * signal, and a stop carries the run folder and the command that continues the run.
 */
export async function withRun<T>(command: RunCommand, run: StartedRun, fn: () => Promise<T>): Promise<T> {
  let outcome: 'done' | 'stopped' | 'failed' = 'failed';
  try {
    const r = await whileStoppable((sig) => run.events.stop?.(sig), async () => {
      run.events.throwIfStopped('stopped before training started; the run folder is ready to resume');
      return fn();
    });
    outcome = 'done';
    return r;
  } catch (e) {
    if (e instanceof InterruptedError) {
      e.resumeCommand = `tlearn ${command} --resume ${shellQuote(run.outDir)}`;
      e.outDir = run.outDir;
      outcome = 'stopped';
    }
    throw e;
  } finally {
    await run.finish(outcome);
  }
}

/**
 * The events side of a whole run: one listener for the caller's `onEvent` and `logger`, the run's own
 * AbortController (aborted by the caller's signal, Ctrl-C or requestStop()), and the last event: 'done' with
 * `doneFields` of the result, 'cancelled' on InterruptedError, 'failed' on anything else (the promise rejects).
 */
export async function runWithEvents<T>(request: RunRequest, body: (ev: RunEvents) => Promise<T>, doneFields: (r: T) => Partial<Extract<TrainingEvent, { type: 'done' }>>): Promise<T> {
  const listeners = [request.onEvent, request.logger ? renderTrainingEvents(request.logger) : undefined].filter((l) => l !== undefined);
  const controller = new AbortController();
  const outer = request.signal;
  const onAbort = () => controller.abort(outer!.reason);
  if (outer?.aborted) onAbort();
  else outer?.addEventListener('abort', onAbort, { once: true });
  const ev = new RunEvents(
    (e) => {
      for (const l of listeners) l(e);
    },
    controller.signal,
    undefined,
    (reason) => controller.abort(reason),
  );
  // the last event must not hide the run's own error when a listener throws
  const last = (e: TrainingEvent) => {
    try {
      ev.emit(e);
    } catch {
      /* the run's outcome stands */
    }
  };
  const t0 = performance.now();
  const seconds = () => (performance.now() - t0) / 1000;
  try {
    const r = await body(ev);
    last({ type: 'done', ...doneFields(r), seconds: seconds() });
    return r;
  } catch (e: any) {
    if (e instanceof InterruptedError) last({ type: 'cancelled', outDir: e.outDir, resumeCommand: e.resumeCommand, message: e.message, seconds: seconds() });
    else last({ type: 'failed', error: e?.message ?? String(e), seconds: seconds() });
    throw e;
  } finally {
    outer?.removeEventListener('abort', onAbort);
  }
}

export function runTitle(ds: ImageFolder, o: ModelOutcome): string {
  const what = o.mode === 'transfer' ? `${o.backbone.name} + ${o.head?.kind ?? 'linear'} head` : o.mode === 'scratch' ? `${o.backbone.name} from scratch` : `${o.backbone.name} fine-tuned`;
  return `${path.basename(ds.root)}: ${what}`;
}

/** Refuses recipe options the mode would not use, before anything is read or written. */
export function checkModeOptions(mode: TrainMode, o: TrainRunOptions): void {
  if (mode === 'transfer') {
    const given = NETWORK_ONLY_OPTIONS.filter(([k]) => o[k] !== undefined && o[k] !== false).map(([, flag]) => flag);
    if (given.length) throw new Error(`${given.join(', ')} appl${given.length > 1 ? 'y' : 'ies'} to --mode finetune and scratch (the network trainer), not to transfer learning on cached features`);
  }
  if (mode !== 'transfer' && o.int8) throw new Error(`--int8 applies to transfer learning (features from an int8 backbone) and to serving; --mode ${mode} trains the float network`);
  if (mode === 'scratch' && o.bn !== undefined) throw new Error("--bn applies to --mode finetune; from scratch, an architecture's BatchNormalization always trains");
  if (mode !== 'transfer') {
    // the network trainer's checks, with the mode's defaults, before features or a first stage are computed
    checkNetworkOptions({
      ...o,
      schedule: o.schedule ?? (mode === 'finetune' ? 'one-cycle' : 'constant'),
      warmupEpochs: o.warmup,
      batchNorm: { momentum: o.bnMomentum, reestimate: typeof o.bnReestimate === 'number' ? { images: o.bnReestimate } : undefined },
    });
  }
}

/** metrics.json's excludedFiles: what was left out and why, paths relative to the dataset. */
function exclusionJson(ds: ImageFolder, x: Exclusion) {
  const rel = (p: string) => path.relative(ds.root, p).split(path.sep).join('/');
  const row = (e: Exclusion['excluded'][number]) => ({ file: rel(e.path), split: e.split, given: e.given, suggested: e.suggested, score: e.score, kind: e.kind });
  return { source: x.source, reason: x.reason, summary: describeExclusion(x), listed: x.listed, count: x.excluded.length, excluded: x.excluded.map(row), keptInTest: x.keptInTest.map(row), notFound: x.notFound };
}

/** The 'evaluation' events of a written run folder (val, then test), with `label` when given. */
export function emitEvaluation(ev: RunEvents, r: Pick<RunFolder, 'metrics'>): void {
  for (const split of ['val', 'test'] as const) {
    const m = r.metrics[split];
    ev.emit({ type: 'evaluation', split, accuracy: m.accuracy, loss: m.loss, images: m.n });
  }
}

export async function trainFromFolder(request: RunRequest): Promise<TrainRunResult> {
  return runWithEvents(
    request,
    async (ev) => {
      const run = await startRun('train', request, ev, (o) => checkModeOptions(o.mode ?? 'transfer', o));
      const { ds, split, outDir, timings, audit, o, exclusion } = run;
      return withRun('train', run, async () => {
        const mode = o.mode ?? 'transfer';
        const checkpoint = { file: path.join(outDir, STATE_FILE), resume: run.resume };
        let outcome: ModelOutcome;
        if (mode === 'transfer') outcome = await runTransfer(split, ds.classes.length, o, ev);
        else if (mode === 'scratch') outcome = await runScratch(split, ds.classes.length, { ...o, checkpoint }, ev);
        else if (mode === 'finetune') outcome = await runFinetune(split, ds.classes.length, { ...o, checkpoint, checkpointDir: path.join(outDir, 'checkpoint') }, ev);
        else throw new Error(`unknown mode '${mode as string}'`);
        // the model is final: calibrate it before anything reads its probabilities
        outcome = calibrateOutcome(outcome, ev, o.calibrate ?? true);
        if (o.tta) outcome = await withTta(outcome, split, o, ev.logger());
        const final = outcome;
        const r = await ev.stage('report', () => writeRunFolder(outDir, ds, split, { ...final, details: { ...final.details, audit, ...(exclusion ? { excludedFiles: exclusionJson(ds, exclusion) } : {}) } }, timings, runTitle(ds, final)));
        emitEvaluation(ev, r);
        return r;
      });
    },
    (r) => ({ outDir: r.outDir, testAccuracy: r.metrics.test.accuracy }),
  );
}
