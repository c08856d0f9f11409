/**
 * The training event stream (issue 22, item 3): a library caller subscribes to the events of a transfer, a
 * fine-tune and a scratch run (tiny generated data) and sees the same kinds in order; cancelling through an
 * AbortSignal stops each within one batch and leaves a run that `{ resume }` completes to the same model as a run
 * that was never stopped; a failure ends with one 'failed' event and a rejected promise.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { trainFromFolder, type TrainRunResult } from '../src/train/run.js';
import { compareOnFolder } from '../src/train/compare.js';
import type { TrainRunOptions } from '../src/train/types.js';
import { InterruptedError } from '../src/util/interrupt.js';
import { formatTrainingEvent, renderTrainingEvents, type TrainingEvent, type TrainingEventType } from '../src/index.js';
import { makeDataset, makeTinyBackbone, ROOT, runCli, tmpDir } from './helpers.js';

type Mode = 'transfer' | 'finetune' | 'scratch';
const MODES: Mode[] = ['transfer', 'finetune', 'scratch'];

let data: string;
let backbone: string;
const options: Record<Mode, Omit<TrainRunOptions, 'data'>> = {} as any;
const reference: Partial<Record<Mode, { result: TrainRunResult; events: TrainingEvent[] }>> = {};

beforeAll(async () => {
  // 120 images: 102 for train+val, so feature extraction (batches of 32) and the epochs (batches of 16) have several batches
  data = await makeDataset(tmpDir(), { classes: { red: 40, green: 40, blue: 40 }, seed: 11, size: 40 });
  backbone = await makeTinyBackbone(tmpDir());
  const base = { seed: 5, batchSize: 16 };
  options.transfer = { ...base, backbone, epochs: 3 };
  options.finetune = { ...base, backbone, mode: 'finetune', unfreeze: 2, headEpochs: 2, epochs: 2 };
  options.scratch = { ...base, mode: 'scratch', inputSize: [48, 48], epochs: 2 };
});

const withoutSeconds = (h: Array<{ seconds: number }>) => h.map(({ seconds: _s, ...rest }) => rest);

/** The kinds in the order they first appear, a mode's progress kind ('extract' or 'batch') as 'progress', checkpoints and lines left out. */
function firstKinds(events: TrainingEvent[]): string[] {
  const seen: string[] = [];
  for (const e of events) {
    if (e.type === 'log' || e.type === 'checkpoint') continue;
    const k = e.type === 'extract' || e.type === 'batch' ? 'progress' : e.type;
    if (!seen.includes(k)) seen.push(k);
  }
  return seen;
}

const stages = (events: TrainingEvent[]) => events.flatMap((e) => (e.type === 'stage' && e.state === 'start' ? [e.stage] : []));
const count = (events: TrainingEvent[], type: TrainingEventType) => events.filter((e) => e.type === type).length;

describe('the event stream of a run', () => {
  it('transfer, fine-tune and scratch emit the same kinds in order, each with its stages, progress, epochs, checkpoints, calibration and evaluations', async () => {
    for (const mode of MODES) {
      const events: TrainingEvent[] = [];
      const result = await trainFromFolder({ data, ...options[mode], out: path.join(tmpDir(), mode), onEvent: (e) => events.push(e) });
      reference[mode] = { result, events };

      // the same kinds, in the same order, whatever the mode
      expect(firstKinds(events), mode).toEqual(['run-start', 'stage', 'progress', 'epoch', 'calibration', 'evaluation', 'done']);
      // nothing but lines before run-start; exactly one last event
      expect(events.findIndex((e) => e.type !== 'log'), mode).toBe(events.findIndex((e) => e.type === 'run-start'));
      expect(events.at(-1)!.type).toBe('done');
      expect(events.filter((e) => e.type === 'done' || e.type === 'failed' || e.type === 'cancelled')).toHaveLength(1);

      const start = events.find((e) => e.type === 'run-start') as Extract<TrainingEvent, { type: 'run-start' }>;
      expect(start).toMatchObject({ mode, classes: ['blue', 'green', 'red'], resumed: false, outDir: result.outDir });
      expect(start.counts.train + start.counts.val + start.counts.test).toBe(120);

      // stages start and end in pairs
      expect(events.filter((e) => e.type === 'stage' && e.state === 'end').map((e) => (e as any).stage)).toEqual(stages(events));
      const epochs = events.filter((e) => e.type === 'epoch') as Array<Extract<TrainingEvent, { type: 'epoch' }>>;
      const checkpoints = events.filter((e) => e.type === 'checkpoint') as Array<Extract<TrainingEvent, { type: 'checkpoint' }>>;
      const network = epochs.filter((e) => e.phase === 'network');
      const head = epochs.filter((e) => e.phase === 'head');
      if (mode === 'transfer') {
        expect(stages(events)).toEqual(['data', 'backbone', 'features', 'head', 'features', 'calibration', 'report']);
        expect(count(events, 'batch') + checkpoints.length + network.length).toBe(0);
        expect(head.map((e) => e.log)).toEqual(result.history);
      } else if (mode === 'finetune') {
        expect(stages(events)).toEqual(['data', 'backbone', 'features', 'head', 'network', 'calibration', 'report']);
        expect(head).toHaveLength(2);
        expect(network.map((e) => e.log)).toEqual(result.history);
        // the head stage ends before the network's first epoch
        expect(events.indexOf(head.at(-1)!)).toBeLessThan(events.findIndex((e) => e.type === 'batch'));
      } else {
        expect(stages(events)).toEqual(['data', 'network', 'calibration', 'report']);
        expect(count(events, 'extract') + head.length).toBe(0);
        expect(network.map((e) => e.log)).toEqual(result.history);
      }
      if (mode !== 'transfer') {
        expect(network.every((e) => e.label === (mode === 'scratch' ? 'scratch' : 'fine-tune') && e.epochs === 2)).toBe(true);
        // a checkpoint at the end of every network epoch, right after it
        expect(checkpoints.map((c) => [c.epoch, c.batch])).toEqual([
          [1, undefined],
          [2, undefined],
        ]);
        for (const c of checkpoints) expect(events.slice(0, events.indexOf(c)).filter((e) => e.type !== 'log').at(-1)).toMatchObject({ type: 'epoch', phase: 'network', log: { epoch: c.epoch } });
        // batch progress: per epoch, from the first batch to every training image
        const batches = events.filter((e) => e.type === 'batch') as Array<Extract<TrainingEvent, { type: 'batch' }>>;
        for (const epoch of [1, 2]) {
          const b = batches.filter((x) => x.epoch === epoch).map((x) => x.done);
          expect(b[0]).toBe(0);
          expect(b.at(-1)).toBe(start.counts.train);
          expect(b.length).toBe(Math.ceil(start.counts.train / 16) + 1);
        }
      }
      if (mode !== 'scratch') {
        const extract = events.filter((e) => e.type === 'extract') as Array<Extract<TrainingEvent, { type: 'extract' }>>;
        const trainVal = extract.filter((e) => e.name === 'features train+val');
        expect(trainVal.at(-1)).toMatchObject({ done: start.counts.train + start.counts.val, total: start.counts.train + start.counts.val });
        expect(trainVal.every((e, i) => i === 0 || e.done >= trainVal[i - 1]!.done)).toBe(true);
        expect(trainVal.at(-1)!.rate).toBeGreaterThanOrEqual(0);
        // fine-tuning's first stage does not touch the test split
        expect(extract.some((e) => e.name === 'features test')).toBe(mode === 'transfer');
      }

      // calibration, then the evaluations of the final model, then done: the numbers of the run folder
      const cal = events.find((e) => e.type === 'calibration') as Extract<TrainingEvent, { type: 'calibration' }>;
      expect(cal.summary).toEqual(result.metrics.calibration);
      const evals = events.filter((e) => e.type === 'evaluation') as Array<Extract<TrainingEvent, { type: 'evaluation' }>>;
      expect(evals.map((e) => [e.split, e.accuracy, e.loss, e.images])).toEqual([
        ['val', result.metrics.val.accuracy, result.metrics.val.loss, result.metrics.val.n],
        ['test', result.metrics.test.accuracy, result.metrics.test.loss, result.metrics.test.n],
      ]);
      expect(events.indexOf(cal)).toBeLessThan(events.indexOf(evals[0]!));
      expect(events.at(-1)).toMatchObject({ type: 'done', outDir: result.outDir, testAccuracy: result.metrics.test.accuracy });
      // every event has a line of text
      for (const e of events) expect(formatTrainingEvent(e).length, e.type).toBeGreaterThan(0);
    }
  });

  it("compare's stream: one run-start and one done, the scratch side's events labelled 'scratch' and the transfer side's 'transfer'", async () => {
    const events: TrainingEvent[] = [];
    const r = await compareOnFolder({ data, backbone, inputSize: [48, 48], epochs: 2, batchSize: 16, seed: 2, out: path.join(tmpDir(), 'compare'), onEvent: (e) => events.push(e) });
    expect(firstKinds(events)).toEqual(['run-start', 'stage', 'progress', 'epoch', 'calibration', 'evaluation', 'done']);
    expect(events.filter((e) => e.type === 'run-start')).toMatchObject([{ mode: 'compare' }]);
    expect(events.at(-1)).toMatchObject({ type: 'done', outDir: r.outDir, testAccuracy: r.transfer.test.accuracy });
    expect([events[0]!.label, events.at(-1)!.label]).toEqual([undefined, undefined]);
    const side = (label: string) => events.filter((e) => e.label === label).map((e) => (e.type === 'stage' ? `${e.stage} ${e.state}` : e.type));
    const compact = (kinds: string[]) => kinds.filter((k, i) => k !== 'log' && k !== kinds[i - 1]);
    expect(compact(side('scratch'))).toEqual(['network start', 'batch', 'epoch', 'checkpoint', 'batch', 'epoch', 'checkpoint', 'network end', 'calibration start', 'calibration', 'calibration end', 'report start', 'report end', 'evaluation']);
    expect(compact(side('transfer'))).toEqual(['backbone start', 'backbone end', 'features start', 'extract', 'features end', 'head start', 'epoch', 'head end', 'features start', 'extract', 'features end', 'calibration start', 'calibration', 'calibration end', 'report start', 'report end', 'evaluation']);
    expect((events.filter((e) => e.type === 'evaluation' && e.label === 'scratch') as any[]).map((e) => e.accuracy)).toEqual([r.runs.scratch.metrics.val.accuracy, r.scratch.test.accuracy]);
  });

  it('the command line renderer draws the events as the CLI prints them: progress bars, epoch lines, checkpoints, calibration', () => {
    const lines: string[] = [];
    const bars: string[] = [];
    const render = renderTrainingEvents({
      info: (m) => lines.push(m),
      warn: (m) => lines.push(`warning: ${m}`),
      progress: (label, total) => ({ tick: () => {}, done: () => bars.push(`${label} of ${total}`) }),
    });
    for (const e of reference.scratch!.events) render(e);
    expect(lines.filter((l) => /^\[scratch\] Epoch \d\/2 - \d+\.\ds - loss: \d\.\d{4} - acc: \d\.\d{4} - val_loss: \d\.\d{4} - val_acc: \d\.\d{4}$/.test(l))).toHaveLength(2);
    expect(lines.filter((l) => /^ {2}checkpoint: epoch \d \(.*training-state\.bin\)$/.test(l))).toHaveLength(2);
    expect(lines.some((l) => l.startsWith('calibration: '))).toBe(true);
    expect(bars).toEqual(['scratch epoch 1/2 of 84', 'scratch epoch 2/2 of 84']);
    // run-start, stages, evaluations and done are left to the command's own output unless asked for
    expect(lines.some((l) => /done in|starting a/.test(l))).toBe(false);
    const verbose: string[] = [];
    const all = renderTrainingEvents({ info: (m) => verbose.push(m), warn: () => {}, progress: () => ({ tick() {}, done() {} }) }, { verbose: true });
    for (const e of reference.scratch!.events) all(e);
    expect(verbose[0]).toMatch(/^starting a scratch run: 3 classes, 84 \/ 18 \/ 18 images \(train \/ val \/ test\) in /);
    expect(verbose.at(-1)).toMatch(/^done in \d+\.\ds: test accuracy \d\.\d{4} \(/);
  });
});

describe('cancelling through an AbortSignal', () => {
  it('stops each mode within one batch, says what remains, and leaves a run that { resume } completes to the same model', async () => {
    // a features cache of its own, so that extraction computes (in batches) rather than reads the reference runs' features
    const home = process.env.TLEARN_HOME;
    process.env.TLEARN_HOME = mkdtempSync(path.join(os.tmpdir(), 'tlearn-events-home-'));
    try {
      for (const mode of MODES) {
        const controller = new AbortController();
        const events: TrainingEvent[] = [];
        let abortedAt = -1;
        // transfer: during the extraction of train+val; fine-tune: in the network's first epoch; scratch: in its second epoch
        const stopHere = (e: TrainingEvent) =>
          mode === 'transfer' ? e.type === 'extract' && e.name === 'features train+val' && e.done > 0 && e.done < e.total : e.type === 'batch' && e.done > 0 && e.done < e.total && e.epoch === (mode === 'scratch' ? 2 : 1);
        const out = path.join(tmpDir(), `stopped-${mode}`);
        const err = await trainFromFolder({
          data,
          ...options[mode],
          out,
          signal: controller.signal,
          onEvent: (e) => {
            events.push(e);
            if (abortedAt < 0 && stopHere(e)) {
              abortedAt = events.length - 1;
              controller.abort();
            }
          },
        }).catch((e) => e);
        expect(err, mode).toBeInstanceOf(InterruptedError);
        expect(abortedAt, mode).toBeGreaterThan(0);
        const after = events.slice(abortedAt + 1);
        const last = events.at(-1) as Extract<TrainingEvent, { type: 'cancelled' }>;
        expect(last).toMatchObject({ type: 'cancelled', outDir: out, resumeCommand: `tlearn train --resume ${out}`, message: err.message });
        expect(after.filter((e) => e.type === 'done' || e.type === 'failed')).toHaveLength(0);
        expect(after.some((e) => e.type === 'epoch' || e.type === 'calibration' || e.type === 'evaluation')).toBe(false);
        if (mode === 'transfer') {
          // no more than one batch of images (32) done after the abort
          const at = (events[abortedAt] as Extract<TrainingEvent, { type: 'extract' }>).done;
          const extracted = after.filter((e) => e.type === 'extract') as Array<Extract<TrainingEvent, { type: 'extract' }>>;
          expect((extracted.at(-1)?.done ?? at) - at).toBeLessThanOrEqual(32);
          expect(err.message).toMatch(/^stopped while extracting features train\+val: \d+ of 102 images; the features computed so far are in the cache/);
        } else {
          // at most one batch after the abort, then the checkpoint of the stop, in the middle of the epoch
          expect(after.filter((e) => e.type === 'batch').length, mode).toBeLessThanOrEqual(1);
          const ck = after.find((e) => e.type === 'checkpoint') as Extract<TrainingEvent, { type: 'checkpoint' }>;
          expect(ck).toMatchObject({ epoch: mode === 'scratch' ? 2 : 1, batches: 6 });
          expect(ck.batch).toBeGreaterThan(0);
          expect(ck.batch).toBeLessThan(6);
          expect(err.message).toMatch(/^stopped; checkpoint written at epoch \d, batch \d\/6/);
          expect(existsSync(path.join(out, 'checkpoint', 'training-state.bin'))).toBe(true);
        }
        // resumable: the recorded options are there, the run is not finished
        expect(existsSync(path.join(out, 'options.json'))).toBe(true);
        expect(existsSync(path.join(out, 'metrics.json'))).toBe(false);

        const resumed: TrainingEvent[] = [];
        const r = await trainFromFolder({ resume: out, onEvent: (e) => resumed.push(e) });
        expect(resumed.find((e) => e.type === 'run-start')).toMatchObject({ mode, resumed: true });
        expect(resumed.at(-1)).toMatchObject({ type: 'done', outDir: out });
        const ref = reference[mode]!.result;
        expect(withoutSeconds(r.history), mode).toEqual(withoutSeconds(ref.history));
        expect(r.metrics.test, mode).toEqual(ref.metrics.test);
        if (mode === 'transfer') {
          // warm: what was computed before the stop comes from the cache
          const trainVal = resumed.filter((e) => e.type === 'extract' && e.name === 'features train+val').at(-1) as Extract<TrainingEvent, { type: 'extract' }>;
          expect(trainVal.cached).toBeGreaterThanOrEqual(32);
          expect(r.metrics.features.fromCache).toBe(trainVal.cached);
        } else {
          // the epochs trained before the stop are replayed from the checkpoint, then training goes on
          const replayed = resumed.filter((e) => e.type === 'epoch' && e.resumed);
          expect(replayed).toHaveLength(mode === 'scratch' ? 1 : 0);
          expect(existsSync(path.join(out, 'checkpoint', 'training-state.bin'))).toBe(false);
        }
      }
    } finally {
      process.env.TLEARN_HOME = home;
    }
  });

  it('a signal aborted before the run starts cancels it before training; the folder resumes', async () => {
    const out = path.join(tmpDir(), 'aborted-early');
    const events: TrainingEvent[] = [];
    const err = await trainFromFolder({ data, ...options.transfer, out, signal: AbortSignal.abort(), onEvent: (e) => events.push(e) }).catch((e) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    expect(events.at(-1)).toMatchObject({ type: 'cancelled', outDir: out, message: 'stopped before training started; the run folder is ready to resume' });
    expect(events.some((e) => e.type === 'stage' && e.stage === 'backbone')).toBe(false);
    const r = await trainFromFolder({ resume: out });
    expect(r.metrics.test).toEqual(reference.transfer!.result.metrics.test);
  });
});

describe('Ctrl-C on the command line', () => {
  it('aborts the command\'s controller: a transfer run stops within a batch, exits 130, prints how to continue, and --resume completes it', async () => {
    const out = path.join(tmpDir(), 'ctrl-c transfer');
    // enough head epochs that the signal comes while the head trains
    const args = ['train', data, '--backbone', backbone, '--epochs', '300', '--batch-size', '16', '--seed', '5', '--out', out];
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/tlearn.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (d) => {
        stderr += d;
        if (/^Epoch 2\/300 /m.test(stderr)) resolve();
      });
      exited.then(() => reject(new Error(`exited before the second epoch: ${stderr}`)));
    });
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(130);
    expect(stderr).toMatch(/Ctrl-C: stopping after the current step/);
    expect(stderr).toMatch(/tlearn: stopped while training the head \(epoch \d+\/300, batch \d\/6\)/);
    expect(stderr).toContain(`to continue: tlearn train --resume '${out}'`);
    expect(existsSync(path.join(out, 'metrics.json'))).toBe(false);
    const resumed = await runCli(['train', '--resume', out, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/^Epoch 300\/300 /m);
    expect(JSON.parse(resumed.stdout).training.epochsRun).toBe(300);
  });
});

describe('a failing run', () => {
  it("ends with one 'failed' event carrying the error, and the promise rejects with it", async () => {
    const events: TrainingEvent[] = [];
    const missing = path.join(tmpDir(), 'no-such-backbone');
    const err = await trainFromFolder({ data, ...options.transfer, backbone: missing, out: path.join(tmpDir(), 'failing'), onEvent: (e) => events.push(e) }).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(InterruptedError);
    // it failed after the run started: the data was read, the backbone was not
    expect(events[0]!.type).toBe('run-start');
    expect(events.filter((e) => e.type === 'failed' || e.type === 'done' || e.type === 'cancelled')).toEqual([{ type: 'failed', error: err.message, seconds: expect.any(Number) }]);
    expect(events.at(-1)!.type).toBe('failed');

    // before the run starts (no data): 'failed' alone
    const early: TrainingEvent[] = [];
    await expect(trainFromFolder({ data: path.join(tmpDir(), 'nothing-here'), onEvent: (e) => early.push(e) })).rejects.toThrow();
    expect(early.map((e) => e.type)).toEqual(['failed']);
  });
});
