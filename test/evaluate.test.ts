import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { evaluateFolder, EvaluationError } from '../src/evaluate/run.js';
import { trainFromFolder } from '../src/train/run.js';
import { makeDataset, makeTinyBackbone, runCli, tmpDir } from './helpers.js';

let runDir: string;

beforeAll(async () => {
  const data = await makeDataset(tmpDir(), { classes: { red: 12, green: 12, blue: 12 }, seed: 21 });
  runDir = (await trainFromFolder({ data, backbone: await makeTinyBackbone(tmpDir()), epochs: 12, batchSize: 8, lr: 0.03, seed: 4, out: path.join(tmpDir(), 'run') })).outDir;
});

describe('tlearn evaluate', () => {
  it('evaluates a labelled folder, reports classes the model does not know, writes metrics, predictions and a report', async () => {
    // new images: red and blue (the model knows them), purple (it does not); no green images
    const data = await makeDataset(tmpDir(), { classes: { red: 5, yellow: 4, blue: 6 }, seed: 99 });
    await fs.rename(path.join(data, 'yellow'), path.join(data, 'purple'));
    const out = path.join(tmpDir(), 'eval');
    const r = await evaluateFolder(runDir, data, { out });
    expect(r.metrics.n).toBe(11);
    expect(r.unknownClasses).toEqual([{ name: 'purple', images: 4 }]);
    expect(r.missingClasses).toEqual(['green']);
    expect(r.metrics.perClass.find((c) => c.name === 'green')!.support).toBe(0);
    expect(r.metrics.accuracy).toBeGreaterThan(0.8);
    expect((await fs.readdir(out)).sort()).toEqual(['class-counts.png', 'confusion.png', 'metrics.json', 'predictions.csv', 'reliability.png', 'report.html']);
    const m = JSON.parse(await fs.readFile(path.join(out, 'metrics.json'), 'utf8'));
    expect(m.unknownClasses).toEqual([{ name: 'purple', images: 4 }]);
    expect(m.metrics.confusion).toHaveLength(3);
  });

  it('fails clearly when no class matches', async () => {
    const data = await makeDataset(tmpDir(), { classes: { cat: 2, dog: 2 } });
    await expect(evaluateFolder(runDir, data, { out: tmpDir() })).rejects.toThrow(EvaluationError);
    await expect(evaluateFolder(runDir, data, { out: tmpDir() })).rejects.toThrow(/none of the classes .* \(cat, dog\) is a class of the model \(blue, green, red\)/);
  });

  it('CLI: --json and the terminal summary', async () => {
    const data = await makeDataset(tmpDir(), { classes: { red: 3, green: 3 }, seed: 5 });
    const r = await runCli(['evaluate', runDir, data, '--out', path.join(tmpDir(), 'e'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.metrics.n).toBe(6);
    expect(j.report).toMatch(/report\.html$/);
    expect(r.stderr).toMatch(/evaluated 6 images/);
    expect(r.stderr).toMatch(/most confused/);
  });
});
