/**
 * Resumable runs: a `tlearn train --mode scratch` killed (SIGKILL) after its first epoch's checkpoint, or stopped
 * with Ctrl-C in the middle of an epoch, continues with `--resume` and ends with the same history and metrics as
 * a run that was never stopped (everything is seeded; no tolerance needed: they are compared exactly). Also
 * fine-tuning and compare, the run's recorded options, --from, and reproducibility.
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAugment } from '../src/image/augment.js';
import { readCheckpoint } from '../src/engine/checkpoint.js';
import { compareOnFolder } from '../src/train/compare.js';
import { trainFromFolder } from '../src/train/run.js';
import { InterruptedError, requestStop } from '../src/util/interrupt.js';
import type { Logger } from '../src/util/log.js';
import { makeDataset, makeTinyBackbone, ROOT, runCli, tmpDir } from './helpers.js';

let data: string;
let home: string;
let lone: string;
const SCRATCH = ['--mode', 'scratch', '--input-size', '48', '--epochs', '4', '--batch-size', '8', '--seed', '3', '--augment', 'flip,crop=0.8', '--json'];

beforeAll(async () => {
  data = await makeDataset(tmpDir(), { classes: { red: 40, green: 40, blue: 40 }, seed: 5, size: 40 });
  home = tmpDir('tlearn-resume-home-');
  lone = path.join(tmpDir(), 'lone');
  const r = await runCli(['train', data, ...SCRATCH, '--out', lone], { TLEARN_HOME: home });
  expect(r.code, r.stderr).toBe(0);
});

/** Starts the CLI; `until(re)` resolves when stderr matches. */
function startCli(args: string[]) {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/tlearn.js'), ...args], { env: { ...process.env, TLEARN_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const waiters: Array<{ re: RegExp; resolve: () => void }> = [];
  child.stderr.on('data', (d) => {
    stderr += d;
    for (const w of waiters.splice(0)) if (w.re.test(stderr)) w.resolve();
    else waiters.push(w);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  return {
    child,
    exited,
    stderr: () => stderr,
    until: (re: RegExp) => new Promise<void>((resolve, reject) => {
      if (re.test(stderr)) return resolve();
      waiters.push({ re, resolve });
      exited.then(() => reject(new Error(`exited before ${re}: ${stderr}`)));
    }),
  };
}

const json = async (f: string) => JSON.parse(await fs.readFile(f, 'utf8'));
const withoutSeconds = (h: any[]) => h.map(({ seconds: _s, ...rest }) => rest);

async function expectSameRun(a: string, b: string): Promise<void> {
  expect(withoutSeconds(await json(path.join(b, 'history.json')))).toEqual(withoutSeconds(await json(path.join(a, 'history.json'))));
  const ma = await json(path.join(a, 'metrics.json'));
  const mb = await json(path.join(b, 'metrics.json'));
  expect(mb.test).toEqual(ma.test);
  expect(mb.val).toEqual(ma.val);
  expect(mb.training.bestEpoch).toBe(ma.training.bestEpoch);
  expect(await fs.readFile(path.join(b, 'split.json'), 'utf8')).toBe(await fs.readFile(path.join(a, 'split.json'), 'utf8'));
  expect(await fs.readFile(path.join(b, 'model', 'weights.bin'))).toEqual(await fs.readFile(path.join(a, 'model', 'weights.bin')));
}

describe('resuming a stopped run', () => {
  it('SIGKILL after the first epoch\'s checkpoint, then --resume: the same history from the resumed epoch on and the same final metrics', async () => {
    const out = path.join(tmpDir(), 'killed');
    const run = startCli(['train', data, ...SCRATCH, '--out', out]);
    await run.until(/checkpoint: epoch 1 /);
    run.child.kill('SIGKILL');
    await run.exited;
    expect(existsSync(path.join(out, 'metrics.json'))).toBe(false);
    const ck = await readCheckpoint<{ epoch: number; history: unknown[] }>(path.join(out, 'checkpoint', 'training-state.bin'));
    expect(ck!.meta.epoch).toBeGreaterThanOrEqual(1);
    expect(ck!.meta.epoch).toBeLessThan(4);
    const resumed = await runCli(['train', '--resume', out, '--json'], { TLEARN_HOME: home });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(new RegExp(`resuming from the checkpoint at the end of epoch ${ck!.meta.epoch}`));
    expect(JSON.parse(resumed.stdout).test.accuracy).toBe((await json(path.join(lone, 'metrics.json'))).test.accuracy);
    await expectSameRun(lone, out);
    // the resumable state is removed when the run has finished
    expect(existsSync(path.join(out, 'checkpoint'))).toBe(false);
    const again = await runCli(['train', '--resume', out], { TLEARN_HOME: home });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/has finished \(metrics\.json is there\); nothing to resume\. To run it again: tlearn train --from/);
  });

  it('Ctrl-C in the middle of an epoch writes a checkpoint, exits non-zero and prints the command that resumes; resuming ends the same', async () => {
    const out = path.join(tmpDir(), 'ctrl c');
    const run = startCli(['train', data, ...SCRATCH, '--out', out]);
    // in epoch 2, after its first batch (usually before its last: the stop then comes mid-epoch)
    await run.until(/scratch epoch 2\/4: \d+\/\d+ \(/);
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(130);
    expect(run.stderr()).toMatch(/Ctrl-C: stopping after the current step \(a checkpoint is written where the mode keeps one/);
    expect(run.stderr()).toMatch(/tlearn: stopped; checkpoint written at (epoch \d, batch \d+\/\d+|the end of epoch \d)/);
    expect(run.stderr()).toContain(`to continue: tlearn train --resume '${out}'`);
    const resumed = await runCli(['train', '--resume', out, '--json'], { TLEARN_HOME: home });
    expect(resumed.code, resumed.stderr).toBe(0);
    await expectSameRun(lone, out);
  });

  it('--resume takes only the recorded options; a new run refuses a folder holding an unfinished one', async () => {
    const out = path.join(tmpDir(), 'stopped');
    const run = startCli(['train', data, ...SCRATCH, '--out', out]);
    await run.until(/checkpoint: epoch 1 /);
    run.child.kill('SIGKILL');
    await run.exited;
    const changed = await runCli(['train', '--resume', out, '--epochs', '9'], { TLEARN_HOME: home });
    expect(changed.code).toBe(1);
    expect(changed.stderr).toMatch(/--resume continues a run with its recorded options; it cannot change epochs/);
    const fresh = await runCli(['train', data, ...SCRATCH, '--out', out], { TLEARN_HOME: home });
    expect(fresh.code).toBe(1);
    expect(fresh.stderr).toMatch(/holds an unfinished run \(checkpoint\/training-state\.bin\); continue it with: tlearn train --resume/);
    const notRun = await runCli(['train', '--resume', tmpDir()], { TLEARN_HOME: home });
    expect(notRun.stderr).toMatch(/is not a tlearn run folder \(it has no options\.json\)/);
    const recorded = await json(path.join(out, 'options.json'));
    expect(recorded).toMatchObject({ command: 'train', options: { data, mode: 'scratch', inputSize: [48, 48], epochs: 4, batchSize: 8, seed: 3, augment: { crop: 0.8, flip: true } } });
  });

  it('fine-tuning stopped after an epoch resumes to the same model', async () => {
    const backbone = await makeTinyBackbone(tmpDir());
    const small = await makeDataset(tmpDir(), { classes: { red: 12, green: 12, blue: 12 }, seed: 9 });
    const o = { data: small, backbone, mode: 'finetune' as const, unfreeze: 2, epochs: 3, headEpochs: 4, lr: 0.002, batchSize: 8, augment: parseAugment('flip'), seed: 4 };
    const a = await trainFromFolder({ ...o, out: path.join(tmpDir(), 'ft-a') });
    const outB = path.join(tmpDir(), 'ft-b');
    const stopper: Logger = { info: (m) => /\[fine-tune\] Epoch 1\//.test(m) && requestStop(), warn: () => {}, progress: () => ({ tick() {}, done() {} }) };
    const err = await trainFromFolder({ ...o, out: outB, logger: stopper }).catch((e) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    expect(err.resumeCommand).toBe(`tlearn train --resume ${outB}`);
    const b = await trainFromFolder({ resume: outB });
    expect(withoutSeconds(b.history)).toEqual(withoutSeconds(a.history));
    expect(b.metrics.test).toEqual(a.metrics.test);
  });

  it('the recipe\'s state is checkpointed too: EMA with mixup, and SWA with progressive resizing and BatchNormalization, resume to the same model', async () => {
    const small = await makeDataset(tmpDir(), { classes: { red: 8, green: 8, blue: 8 }, seed: 3, size: 48 });
    // stopped after epoch 1 (EMA under way), and after epoch 2 (one epoch in the SWA sums)
    const recipes = [
      { arch: 'notebook-cnn', ema: 0.9, mixup: 0.4, stopAfter: 1 },
      { arch: 'resnet-mini', swa: 2, progressive: [[32, 32]] as Array<[number, number]>, stopAfter: 2 },
    ];
    for (const { stopAfter, ...r } of recipes) {
      const o = { data: small, mode: 'scratch' as const, inputSize: [48, 48] as [number, number], epochs: 3, batchSize: 8, seed: 6, ...r };
      const a = await trainFromFolder({ ...o, out: path.join(tmpDir(), 'rec-a') });
      const outB = path.join(tmpDir(), 'rec-b');
      const stopper: Logger = { info: (m) => m.startsWith(`[scratch] Epoch ${stopAfter}/`) && requestStop(), warn: () => {}, progress: () => ({ tick() {}, done() {} }) };
      await expect(trainFromFolder({ ...o, out: outB, logger: stopper })).rejects.toBeInstanceOf(InterruptedError);
      expect((await readCheckpoint<{ epoch: number }>(path.join(outB, 'checkpoint', 'training-state.bin')))!.meta.epoch).toBe(stopAfter);
      const b = await trainFromFolder({ resume: outB });
      expect(withoutSeconds(b.history), r.arch).toEqual(withoutSeconds(a.history));
      expect(b.metrics.test, r.arch).toEqual(a.metrics.test);
      expect(await fs.readFile(path.join(outB, 'model', 'weights.bin'))).toEqual(await fs.readFile(path.join(a.outDir, 'model', 'weights.bin')));
    }
  });

  it('compare --resume continues the scratch side and ends as an uninterrupted compare', async () => {
    const backbone = await makeTinyBackbone(tmpDir());
    const small = await makeDataset(tmpDir(), { classes: { red: 12, green: 12, blue: 12 }, seed: 2, size: 48 });
    const o = { data: small, backbone, inputSize: [48, 48] as [number, number], epochs: 3, batchSize: 8, lr: 0.003, seed: 2 };
    const a = await compareOnFolder({ ...o, out: path.join(tmpDir(), 'cmp-a') });
    const outB = path.join(tmpDir(), 'cmp-b');
    const stopper: Logger = { info: (m) => /\[scratch\] Epoch 1\//.test(m) && requestStop(), warn: () => {}, progress: () => ({ tick() {}, done() {} }) };
    const err = await compareOnFolder({ ...o, out: outB, logger: stopper }).catch((e) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    expect(err.resumeCommand).toBe(`tlearn compare --resume ${outB}`);
    const b = await compareOnFolder({ resume: outB });
    expect(withoutSeconds(b.scratch.history)).toEqual(withoutSeconds(a.scratch.history));
    expect(b.scratch.test).toEqual(a.scratch.test);
    expect(b.transfer.test).toEqual(a.transfer.test);
    expect(existsSync(path.join(outB, 'scratch', 'checkpoint'))).toBe(false);
  });
});

describe('reproducible runs', () => {
  it('the same data, seed and options give a byte-identical split.json and identical metrics; --from repeats a run and prints what changed in the data', async () => {
    const backbone = await makeTinyBackbone(tmpDir());
    const ds = await makeDataset(tmpDir(), { classes: { red: 10, green: 10, blue: 10 }, seed: 6 });
    const args = ['--backbone', backbone, '--epochs', '5', '--batch-size', '8', '--seed', '7', '--json'];
    const a = path.join(tmpDir(), 'a');
    const b = path.join(tmpDir(), 'b');
    for (const out of [a, b]) expect((await runCli(['train', ds, ...args, '--out', out], { TLEARN_HOME: home })).code).toBe(0);
    expect(await fs.readFile(path.join(b, 'split.json'))).toEqual(await fs.readFile(path.join(a, 'split.json')));
    expect((await json(path.join(b, 'metrics.json'))).test).toEqual((await json(path.join(a, 'metrics.json'))).test);
    // --from with nothing changed: same split, same metrics, says so
    const c = path.join(tmpDir(), 'c');
    const same = await runCli(['train', '--from', a, '--out', c, '--json'], { TLEARN_HOME: home });
    expect(same.code, same.stderr).toBe(0);
    expect(same.stderr).toContain(`same data and split as ${a}`);
    expect(await fs.readFile(path.join(c, 'split.json'))).toEqual(await fs.readFile(path.join(a, 'split.json')));
    expect(JSON.parse(same.stdout).test).toEqual((await json(path.join(a, 'metrics.json'))).test);
    // change the data, then repeat with one option changed
    await fs.rm(path.join(ds, 'red', 'img_003.jpg'));
    await fs.copyFile(path.join(ds, 'blue', 'img_000.jpg'), path.join(ds, 'blue', 'new.jpg'));
    const d = path.join(tmpDir(), 'd');
    const changed = await runCli(['train', '--from', a, '--epochs', '3', '--out', d], { TLEARN_HOME: home });
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stderr).toContain(`the data differs from ${a}'s:`);
    expect(changed.stderr).toMatch(/1 file added: blue\/new\.jpg/);
    expect(changed.stderr).toMatch(/1 file removed: red\/img_003\.jpg/);
    expect((await json(path.join(d, 'options.json'))).options).toMatchObject({ epochs: 3, seed: 7, batchSize: 8, backbone });
    expect(await json(path.join(d, 'history.json'))).toHaveLength(3);
  });
});
