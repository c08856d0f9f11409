/** bench/recipes-lib.ts: reading the bench's command line and appending rows to ACCURACY.md. */
import { describe, expect, it } from 'vitest';
import { appendRows, meanSd, parseBenchArgs, RECIPES, secondsPerEpoch, TABLE_HEADER, tableRow, type RecipeResult } from '../bench/recipes-lib.js';
import { ARCHITECTURES } from '../src/engine/architectures.js';

describe('bench:recipes', () => {
  it('reads recipe names, ad-hoc recipes, datasets, seeds and extra flags; refuses what it does not know', () => {
    const a = parseBenchArgs(['finetune', 'ls0=--mode finetune --augment  --label-smoothing 0', '--data', 'caltech97', '--seeds', '42,1,2', '--extra', '--epochs 1']);
    expect(a.recipes.map((r) => r.name)).toEqual(['finetune', 'ls0']);
    expect(a.recipes[1]!.flags).toEqual(['--mode', 'finetune', '--augment', '--label-smoothing', '0']);
    expect(a.datasets.map((d) => d.name)).toEqual(['caltech97']);
    expect(a.seeds).toEqual([42, 1, 2]);
    expect(a.extra).toEqual(['--epochs', '1']);
    expect(parseBenchArgs(['transfer']).datasets.map((d) => d.name)).toEqual(['caltech97', 'antsbees']);
    expect(parseBenchArgs(['--list']).list).toBe(true);
    expect(() => parseBenchArgs([])).toThrow(/name at least one recipe/);
    expect(() => parseBenchArgs(['nope'])).toThrow(/unknown recipe 'nope'/);
    expect(() => parseBenchArgs(['transfer', '--data', 'mnist'])).toThrow(/unknown dataset 'mnist'/);
    expect(() => parseBenchArgs(['transfer', '--seeds', 'a'])).toThrow(/--seeds takes comma-separated whole numbers/);
    expect(() => parseBenchArgs(['transfer', '--seeds'])).toThrow(/--seeds needs a value/);
    expect(() => parseBenchArgs(['bad name!=--epochs 1'])).toThrow(/recipe names are/);
  });

  it('every named recipe uses only architectures that exist, and names are unique', () => {
    expect(new Set(RECIPES.map((r) => r.name)).size).toBe(RECIPES.length);
    for (const r of RECIPES) {
      const i = r.flags.indexOf('--arch');
      if (i >= 0) expect(ARCHITECTURES[r.flags[i + 1]!]).toBeDefined();
    }
  });

  it('appends rows to the recipes table, creating ACCURACY.md with its header when absent', () => {
    const r: RecipeResult = { date: '2026-01-02', dataset: 'caltech97', recipe: RECIPES[1]!, extra: [], seed: 42, valAcc: 0.91234, testAcc: 0.9, testEce: 0.021, secondsPerEpoch: 44.44, wallSeconds: 512.3, peakRssMB: 1234.5 };
    const row = tableRow(r);
    expect(row).toBe('| 2026-01-02 | caltech97 | finetune | `--mode finetune --augment` | 42 | 0.9123 | 0.9000 | 0.0210 | 44.4 | 512 s | 1235 MB |');
    expect(tableRow({ ...r, extra: ['--epochs', '1'], peakRssMB: null })).toContain('finetune (smoke test: not a result) | `--mode finetune --augment --epochs 1`');
    const first = appendRows(undefined, [row], '# Accuracy\n\nintro\n');
    expect(first.startsWith('# Accuracy\n\nintro\n')).toBe(true);
    expect(first).toContain(`${TABLE_HEADER.join('\n')}\n${row}\n<!-- recipes:end -->`);
    const second = appendRows(first, ['| next |'], 'unused');
    expect(second).toContain(`${row}\n| next |\n<!-- recipes:end -->`);
    // a file written by hand without markers keeps its text; the table goes after it
    const kept = appendRows('# Accuracy\n\nnotes by hand\n', [row], 'unused');
    expect(kept.startsWith('# Accuracy\n\nnotes by hand\n')).toBe(true);
    expect(kept).toContain(row);
  });

  it('mean and spread; seconds per epoch from metrics.json', () => {
    expect(meanSd([0.9, 0.92, 0.94])).toEqual({ mean: expect.closeTo(0.92, 10), sd: expect.closeTo(0.02, 10) });
    expect(meanSd([0.5])).toEqual({ mean: 0.5, sd: 0 });
    expect(secondsPerEpoch({ training: { secondsPerEpoch: [40, 50] } })).toBe(45);
    expect(secondsPerEpoch({ training: { epochsRun: 10 }, timings: { train: 2.5 } })).toBe(0.25);
  });
});
