/**
 * The README's own commands, run as written: every shell block marked `<!-- readme-test N -->` (those that need
 * no network), in the order of N, in one bash shell at the repository root with an empty tlearn home. `npm ci`
 * lines are the suite's own install and are not run again.
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CALTECH, hasShared, MOBILENET, ROOT, tmpDir } from './helpers.js';

export function markedBlocks(readme: string): Array<{ n: number; script: string }> {
  const out: Array<{ n: number; script: string }> = [];
  const re = /<!-- readme-test (\d+)[^>]*-->\s*\n```sh\n([\s\S]*?)```/g;
  for (const m of readme.matchAll(re)) out.push({ n: Number(m[1]), script: m[2]! });
  return out.sort((a, b) => a.n - b.n);
}

describe('README commands', () => {
  it('finds the marked blocks', async () => {
    const blocks = markedBlocks(await fs.readFile(path.join(ROOT, 'README.md'), 'utf8'));
    expect(blocks.map((b) => b.n)).toEqual([1, 2]);
    expect(blocks[0]!.script).toContain('npx tlearn train caltech101 --exclude notebook --out runs/caltech97');
  });

  const shared = hasShared(CALTECH, 'the README commands test') && hasShared(MOBILENET, 'the README commands test');
  it.skipIf(!shared)('run as written: offline import, train, predict, export', async () => {
    const blocks = markedBlocks(await fs.readFile(path.join(ROOT, 'README.md'), 'utf8'));
    const script = ['set -euo pipefail', ...blocks.map((b) => b.script.split('\n').filter((l) => l.trim() !== 'npm ci').join('\n'))].join('\n');
    const home = tmpDir('tlearn-readme-home-');
    const runs = path.join(ROOT, 'runs');
    const hadRuns = existsSync(runs);
    const created = ['caltech97'].map((r) => path.join(runs, r));
    for (const r of [...created, path.join(ROOT, 'out.csv')]) expect(existsSync(r), `${r} exists already; the README test would overwrite it`).toBe(false);
    try {
      const r = await new Promise<{ code: number; out: string; err: string }>((resolve) =>
        execFile('bash', ['-c', script], { cwd: ROOT, env: { ...process.env, TLEARN_HOME: home, CI: '1' }, maxBuffer: 64 << 20, timeout: 600_000 }, (e, out, err) =>
          resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }),
        ),
      );
      expect(r.code, `${r.err.slice(-4000)}\n${r.out.slice(-2000)}`).toBe(0);
      // predict: the top class of the README's ant image, as a table
      expect(r.out).toMatch(/ant/);
      const csv = await fs.readFile(path.join(ROOT, 'out.csv'), 'utf8');
      expect(csv.trim().split('\n').length).toBeGreaterThan(40); // a whole folder: Caltech's ant class has 42 images
      expect(existsSync(path.join(runs, 'caltech97', 'model.onnx'))).toBe(true);
      const metrics = JSON.parse(await fs.readFile(path.join(runs, 'caltech97', 'metrics.json'), 'utf8'));
      expect(metrics.test.accuracy).toBeGreaterThan(0.88);
    } finally {
      await fs.rm(path.join(ROOT, 'out.csv'), { force: true });
      for (const r of created) await fs.rm(r, { recursive: true, force: true });
      if (!hadRuns) await fs.rm(runs, { recursive: true, force: true });
      await fs.rm(home, { recursive: true, force: true });
    }
  }, 900_000);
});
