/**
 * Leftovers and concurrency, through the public behaviour only (whatever the features store is): a run killed
 * during feature extraction leaves nothing that a later run reads or keeps, and two `tlearn train` processes on
 * one dataset and one TLEARN_HOME at once both finish with the metrics of a lone run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { findTempFiles, tempPath } from '../src/util/tempfiles.js';
import { makeDataset, makeTinyBackbone, ROOT, runCli, tmpDir } from './helpers.js';

let data: string;
let backbone: string;
let loneMetrics: any;
const ARGS = () => ['--backbone', backbone, '--epochs', '6', '--batch-size', '16', '--seed', '5', '--json'];

beforeAll(async () => {
  data = await makeDataset(tmpDir(), { classes: { red: 70, green: 70, blue: 70 }, seed: 8, size: 40 });
  backbone = await makeTinyBackbone(tmpDir());
  const r = await runCli(['train', data, ...ARGS(), '--out', path.join(tmpDir(), 'lone')], { TLEARN_HOME: tmpDir('tlearn-lone-home-') });
  expect(r.code, r.stderr).toBe(0);
  loneMetrics = JSON.parse(r.stdout);
});

/** A pid that was alive a moment ago and is not now. */
function deadPid(): number {
  const p = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(p.stdout.toString());
}

const sameMetrics = (m: any) => {
  expect(m.test).toEqual(loneMetrics.test);
  expect(m.val).toEqual(loneMetrics.val);
};

describe('leftovers of killed runs', () => {
  it('a run killed during feature extraction: the next run reads no partial file, ends as a lone run, and leaves no temporary file', async () => {
    const home = tmpDir('tlearn-killed-home-');
    const out = path.join(tmpDir(), 'killed');
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/tlearn.js'), 'train', data, ...ARGS(), '--out', out], { env: { ...process.env, TLEARN_HOME: home }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (d) => {
        stderr += d;
        // the progress line of feature extraction appears after its first images
        if (/features train\+val: \d+\/\d+ \(/.test(stderr)) resolve();
      });
      child.on('exit', () => reject(new Error(`exited before extracting features: ${stderr}`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    await expect(fs.access(path.join(out, 'metrics.json'))).rejects.toThrow();
    // leftovers of dead writers, as a killed process leaves them: half-written temporary files
    const pid = deadPid();
    const planted = [tempPath(path.join(home, 'features', 'content-hashes.json')), tempPath(path.join(home, 'onnx', 'x.onnx')), path.join(home, 'features', `old.f32.${pid}.deadbeef.tmp`)].map((p) => p.replace(`-${process.pid}-`, `-${pid}-`));
    for (const p of planted) {
      await fs.mkdir(path.dirname(p), { recursive: true });
      await fs.writeFile(p, 'half-written');
    }
    const info = await runCli(['cache', 'info'], { TLEARN_HOME: home });
    expect(Number(/temporary files: (\d+) left by stopped processes/.exec(info.stdout)?.[1])).toBeGreaterThanOrEqual(planted.length);
    for (const p of planted) expect(info.stdout).toContain(`stale: ${p}`);
    expect((await findTempFiles(home)).filter((t) => t.stale).length).toBeGreaterThanOrEqual(planted.length);
    // a new run (the killed one's folder is unfinished but has no checkpoint: transfer learning; it is simply run again)
    const again = await runCli(['train', data, ...ARGS(), '--out', out], { TLEARN_HOME: home });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/removed \d+ temporary files? left by stopped processes/);
    sameMetrics(JSON.parse(again.stdout));
    expect(await findTempFiles(home)).toEqual([]);
    expect(await findTempFiles(out)).toEqual([]);
    const after = await runCli(['cache', 'info'], { TLEARN_HOME: home });
    expect(after.stdout).toMatch(/temporary files: 0 left by stopped processes \(0\.0 MB\), 0 being written/);
  });
});

describe('concurrent runs', () => {
  it('two tlearn train processes on one dataset and one TLEARN_HOME at once both succeed with the metrics of a lone run; the cache stays consistent', async () => {
    const home = tmpDir('tlearn-shared-home-');
    const outs = [path.join(tmpDir(), 'one'), path.join(tmpDir(), 'two')];
    const [a, b] = await Promise.all(outs.map((out) => runCli(['train', data, ...ARGS(), '--out', out], { TLEARN_HOME: home })));
    expect(a!.code, a!.stderr).toBe(0);
    expect(b!.code, b!.stderr).toBe(0);
    sameMetrics(JSON.parse(a!.stdout));
    sameMetrics(JSON.parse(b!.stdout));
    // the shared cache is whole: a third run reads every vector from it and ends the same
    const third = await runCli(['train', data, ...ARGS(), '--out', path.join(tmpDir(), 'three')], { TLEARN_HOME: home });
    const m = JSON.parse(third.stdout);
    expect(m.features.computed).toBe(0);
    expect(m.features.fromCache).toBe(210);
    sameMetrics(m);
    expect(await findTempFiles(home)).toEqual([]);
  });

  it('a second process cannot write a run folder in use; it says who holds it', async () => {
    const home = tmpDir('tlearn-lock-home-');
    const out = path.join(tmpDir(), 'busy');
    const [a, b] = await Promise.all([runCli(['train', data, ...ARGS(), '--out', out], { TLEARN_HOME: home }), new Promise((r) => setTimeout(r, 100)).then(() => runCli(['train', data, ...ARGS(), '--out', out], { TLEARN_HOME: home }))]);
    const codes = [a.code, b.code].sort();
    expect(codes).toEqual([0, 1]);
    const loser = a.code ? a : b;
    expect(loser.stderr).toMatch(/is in use by tlearn train \(process \d+, started .*\); wait for it to finish, or stop it/);
  });
});
