import { beforeAll, describe, expect, it } from 'vitest';
import { loadImageFolder } from '../src/data/discover.js';
import { decodeForTarget } from '../src/image/decode.js';
import { preprocessTargetInto } from '../src/backbones/preprocess.js';
import type { InferenceRunner } from '../src/runtime/inference.js';
import { streamImages } from '../src/runtime/image-stream.js';
import { makeDataset, tmpDir } from './helpers.js';

const SIZE: [number, number] = [32, 32];
const PX = SIZE[0] * SIZE[1] * 3;
const dopts = { width: SIZE[1], height: SIZE[0], resize: 'squash' as const };
let paths: string[];

beforeAll(async () => {
  const ds = await loadImageFolder(await makeDataset(tmpDir(), { classes: { red: 20, green: 20, blue: 19 } }));
  paths = ds.images.map((i) => i.path);
});

/** Each image's output: the sum of its input values, and its first value; the runner checks its input is not touched while it runs. */
function summingRunner(opts: { whileRunning?: () => Promise<void>; failOn?: number } = {}) {
  const calls: Array<{ n: number; changed: boolean }> = [];
  const runner: InferenceRunner = {
    outputDim: 2,
    inputSize: SIZE,
    async run(x: Float32Array, n: number) {
      const copy = x.slice();
      if (calls.length === opts.failOn) throw new Error('forward pass failed (test)');
      await (opts.whileRunning?.() ?? new Promise((r) => setTimeout(r, 5)));
      const out = new Float32Array(n * 2);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < PX; j++) s += x[i * PX + j]!;
        out[i * 2] = s;
        out[i * 2 + 1] = x[i * PX]!;
      }
      calls.push({ n, changed: copy.some((v, i) => v !== x[i]) });
      return out;
    },
    async close() {},
  } as unknown as InferenceRunner;
  return { runner, calls };
}

async function expected(): Promise<Float32Array> {
  const out = new Float32Array(paths.length * 2);
  const x = new Float32Array(PX);
  for (let i = 0; i < paths.length; i++) {
    preprocessTargetInto(await decodeForTarget(paths[i]!, dopts), dopts, 'tf', x);
    out[i * 2] = x.reduce((a, b) => a + b, 0);
    out[i * 2 + 1] = x[0]!;
  }
  return out;
}

describe('streamImages: files → batches → forward passes', () => {
  it('gives every image its own row, in batches of the asked size, and never changes a batch while its forward pass runs', async () => {
    const want = await expected();
    const { runner, calls } = summingRunner();
    const r = await streamImages(paths, runner, { inputSize: SIZE, preprocessing: 'tf', resize: 'squash', batchSize: 8 });
    expect(r.computed).toBe(paths.length);
    expect(r.ok.every(Boolean)).toBe(true);
    // 59 images in batches of 8: 7 full batches and one of 3
    expect(calls.map((c) => c.n)).toEqual([8, 8, 8, 8, 8, 8, 8, 3]);
    expect(calls.some((c) => c.changed)).toBe(false);
    for (let i = 0; i < paths.length; i++) {
      expect(r.outputs[i * 2]).toBeCloseTo(want[i * 2]!, 1);
      expect(r.outputs[i * 2 + 1]).toBe(want[i * 2 + 1]);
    }
  });

  it('a failed forward pass fails the whole call with its error (no rows silently left empty)', async () => {
    const { runner } = summingRunner({ failOn: 2 });
    await expect(streamImages(paths, runner, { inputSize: SIZE, preprocessing: 'tf', resize: 'squash', batchSize: 8 })).rejects.toThrow('forward pass failed (test)');
  });

  it('stopping lets the batch in the forward pass finish and store its rows, then says how many were done', async () => {
    const ac = new AbortController();
    const stored = new Set<string>();
    const { runner, calls } = summingRunner({
      whileRunning: async () => {
        if (calls.length === 1) ac.abort();
        await new Promise((r) => setTimeout(r, 20));
      },
    });
    const err = await streamImages(paths, runner, {
      inputSize: SIZE,
      preprocessing: 'tf',
      resize: 'squash',
      batchSize: 8,
      signal: ac.signal,
      store: async (hash) => void stored.add(hash),
    }).catch((e) => e);
    expect(String(err)).toMatch(/stopped after 16 of 59 images/);
    expect(calls.length).toBe(2);
    expect(stored.size).toBe(16);
  });
});
