import { spawnSync } from 'node:child_process';
import { promises as fs, utimesSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeCheckpoint, encodeCheckpoint, readCheckpoint, writeCheckpoint } from '../src/engine/checkpoint.js';
import { loadLoopState, saveLoopState, trainingFingerprint } from '../src/engine/network-state.js';
import { OnnxTrainer } from '../src/engine/onnx-trainer.js';
import { buildArchitecture } from '../src/engine/architectures.js';
import { writeFileAtomic } from '../src/util/fs.js';
import { lockFolder, LockError, LOCK_FILE } from '../src/util/lock.js';
import { findTempFiles, parseTempName, sweepTempFiles, tempPath } from '../src/util/tempfiles.js';
import { tmpDir } from './helpers.js';

function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString());
}

describe('temporary files', () => {
  it('are named with the writer\'s pid; a dead writer\'s, a legacy name or a day-old one is stale, a live writer\'s is not', async () => {
    const dir = tmpDir();
    const mine = tempPath(path.join(dir, 'a.json'));
    expect(parseTempName(path.basename(mine))).toEqual({ pid: process.pid, sameHost: true });
    const pid = deadPid();
    const dead = mine.replace(`-${process.pid}-`, `-${pid}-`);
    const legacy = path.join(dir, 'sub', `b.f32.${pid}.0123abcd.tmp`);
    const staging = path.join(dir, `mobilenet.staging-${pid}`);
    const old = tempPath(path.join(dir, 'c.bin'));
    const foreign = path.join(dir, 'd.bin.tlearn-tmp-1-00000000-00000000');
    for (const f of [mine, dead, legacy, old, foreign, path.join(staging, 'w.h5'), path.join(dir, 'keep.json')]) {
      await fs.mkdir(path.dirname(f), { recursive: true });
      await fs.writeFile(f, 'x');
    }
    utimesSync(old, new Date(Date.now() - 2 * 86400e3), new Date(Date.now() - 2 * 86400e3));
    const found = Object.fromEntries((await findTempFiles(dir)).map((t) => [path.relative(dir, t.path), t.stale]));
    expect(found).toEqual({
      [path.basename(mine)]: false,
      [path.basename(dead)]: true,
      [path.relative(dir, legacy)]: true,
      [path.basename(staging)]: true,
      [path.basename(old)]: true,
      // another machine's writer (host differs): kept until it is a day old
      [path.basename(foreign)]: false,
    });
    // not deeper than asked
    expect((await findTempFiles(dir, 0)).map((t) => path.relative(dir, t.path))).not.toContain(path.relative(dir, legacy));
    const removed = await sweepTempFiles(dir);
    expect(removed.map((t) => path.relative(dir, t.path)).sort()).toEqual([path.basename(dead), path.basename(old), path.basename(staging), path.relative(dir, legacy)].sort());
    expect((await fs.readdir(dir)).sort()).toEqual([path.basename(mine), path.basename(foreign), 'keep.json', 'sub'].sort());
  });

  it('writeFileAtomic leaves the old content or the new, and no temporary file', async () => {
    const f = path.join(tmpDir(), 'x', 'f.json');
    await writeFileAtomic(f, 'one');
    await writeFileAtomic(f, 'two', { durable: true });
    expect(await fs.readFile(f, 'utf8')).toBe('two');
    expect(await fs.readdir(path.dirname(f))).toEqual(['f.json']);
  });
});

describe('run folder lock', () => {
  it('refuses a folder held by a live process, takes over one held by a dead process', async () => {
    const dir = tmpDir();
    const release = await lockFolder(dir, 'tlearn train');
    await expect(lockFolder(dir, 'tlearn train')).rejects.toThrow(LockError);
    await expect(lockFolder(dir, 'tlearn train')).rejects.toThrow(new RegExp(`in use by tlearn train \\(process ${process.pid}, started`));
    await release();
    await fs.writeFile(path.join(dir, LOCK_FILE), JSON.stringify({ pid: deadPid(), host: (await import('node:os')).hostname(), startedAt: 'then', what: 'tlearn train' }));
    const again = await lockFolder(dir, 'tlearn train');
    expect(JSON.parse(await fs.readFile(path.join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    await again();
    expect(await fs.readdir(dir)).toEqual([]);
  });
});

describe('checkpoints', () => {
  it('round-trip named tensors and JSON meta with non-finite numbers; refuse damaged or newer files', async () => {
    const meta = { epoch: 3, best: { loss: Infinity }, nan: NaN, history: [{ loss: 0.5 }] };
    const tensors: Array<[string, Float32Array | Float64Array]> = [
      ['weights/0', new Float32Array([1, 2, 3])],
      ['ema/0', new Float32Array([0.5])],
      ['swa/0', new Float64Array([1 / 3, 2 / 3])],
      ['empty', new Float32Array(0)],
    ];
    const bytes = encodeCheckpoint(meta, tensors);
    const back = decodeCheckpoint<typeof meta>(bytes);
    expect(back.meta.epoch).toBe(3);
    expect(back.meta.best.loss).toBe(Infinity);
    expect(back.meta.nan).toBeNaN();
    expect([...back.tensors.keys()]).toEqual(['weights/0', 'ema/0', 'swa/0', 'empty']);
    // float64 stays float64 (sums of weights lose nothing)
    expect(back.tensors.get('swa/0')).toEqual(new Float64Array([1 / 3, 2 / 3]));
    expect(Array.from(back.tensors.get('weights/0')!)).toEqual([1, 2, 3]);
    expect(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 4))).toThrow(/truncated/);
    expect(() => decodeCheckpoint(new TextEncoder().encode('hello world, not a checkpoint'))).toThrow(/not a tlearn checkpoint/);
    const newer = Buffer.from(bytes);
    newer.set(Buffer.from('"version":9'), Buffer.from(bytes).indexOf('"version":1'));
    expect(() => decodeCheckpoint(newer)).toThrow(/written by a newer tlearn/);
    const file = path.join(tmpDir(), 'c', 'state.bin');
    expect(await readCheckpoint(file)).toBeUndefined();
    await writeCheckpoint(file, meta, tensors);
    expect((await readCheckpoint(file))!.tensors.get('ema/0')![0]).toBe(0.5);
  });

  it('the training loop state restores weights, optimizer moments and generators, and refuses another fingerprint', async () => {
    const { artifacts } = await buildArchitecture('notebook-cnn', [48, 48], 3, 1);
    const make = () => OnnxTrainer.create(artifacts, { trainable: () => true, microBatch: 2, optimizer: 'adam', seed: 1, threads: 1 });
    const a = await make();
    const x = new Float32Array(2 * 48 * 48 * 3).map((_, i) => (i % 17) / 17);
    const y = Int32Array.from([0, 2]);
    await a.trainBatch(x, y);
    const file = path.join(tmpDir(), 'state.bin');
    const fp = trainingFingerprint(a, { test: 1 });
    const state = { epoch: 1, batch: 0, step: 1, partial: { lossSum: 0, correct: 0, n: 0, seconds: 0 }, shuffleRng: 7, best: { loss: 0.9, epoch: 1, weights: a.snapshot() }, stale: 0, stoppedEarly: false, history: [], epochSeconds: [1], failed: [] };
    let extra: Float32Array = new Float32Array([4, 5]);
    const part = { name: 'ema', save: () => ({ meta: { decay: 0.99 }, tensors: [extra] }), load: (s: { meta?: unknown; tensors: Float32Array[] }) => (extra = s.tensors[0]!) };
    await saveLoopState(file, fp, a, state, [part]);
    const next = await a.trainBatch(x, y);
    const b = await make();
    extra = new Float32Array(2);
    const loaded = await loadLoopState(file, fp, b, [part]);
    expect(loaded!.shuffleRng).toBe(7);
    expect(Array.from(extra)).toEqual([4, 5]);
    // the same next step from the restored state
    expect((await b.trainBatch(x, y)).lossSum).toBe(next.lossSum);
    expect(b.snapshot().map((w) => Array.from(w.subarray(0, 5)))).toEqual(a.snapshot().map((w) => Array.from(w.subarray(0, 5))));
    await expect(loadLoopState(file, trainingFingerprint(b, { test: 2 }), b)).rejects.toThrow(/written for a different model, data or training options/);
    await Promise.all([a.close(), b.close()]);
  });
});
