import { existsSync, mkdtempSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module script without types
import { checkImports } from '../scripts/check-imports.mjs';
import { ROOT } from './helpers.js';

type Check = { files: number; problems: string[] };

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tlearn-imports-'));
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), text);
  }
  return dir;
}

describe('import graph of src/', () => {
  it('has no circle, and every import goes down the floors', () => {
    const r: Check = checkImports(path.join(ROOT, 'src'));
    expect(r.files).toBeGreaterThan(100);
    expect(r.problems).toEqual([]);
  });

  it('finds a planted circle, type-only imports included', () => {
    const dir = tree({
      'image/a.ts': "import { b } from './b.js';\nexport const a = 1;\n",
      'image/b.ts': "import type { C } from './c.js';\nexport const b = 2;\n",
      'image/c.ts': "export type C = number;\nexport { a } from './a.js';\n",
      'image/d.ts': "import { a } from './a.js';\n",
    });
    const r: Check = checkImports(dir);
    expect(r.problems).toEqual(['import circle: image/a.ts <-> image/b.ts <-> image/c.ts']);
  });

  it('finds a planted import up the floors (image must not import data)', () => {
    const dir = tree({
      'data/walk.ts': "import { decode } from '../image/decode.js';\nexport const walk = decode;\n",
      'image/decode.ts': "// import { walk } from '../data/walk.js'; (a comment, not an import)\nexport const decode = 1;\nexport const later = () => import('../data/walk.js');\n",
    });
    const r: Check = checkImports(dir);
    expect(r.problems).toHaveLength(2);
    expect(r.problems[0]).toMatch(/^import circle: data\/walk\.ts <-> image\/decode\.ts$/);
    expect(r.problems[1]).toBe('image/decode.ts imports data/walk.ts: image may not import data (a floor above it)');
  });

  it('names a folder that has no floor', () => {
    const dir = tree({ 'gadgets/x.ts': "import { u } from '../util/u.js';\n", 'util/u.ts': 'export const u = 1;\n' });
    const r: Check = checkImports(dir);
    expect(r.problems).toEqual(['gadgets/x.ts: folder "gadgets" has no floor in scripts/check-imports.mjs']);
  });

  it('every folder of src/ has a README.md saying what the room is for', () => {
    const missing: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (!e.isDirectory()) continue;
        const d = path.join(dir, e.name);
        if (!existsSync(path.join(d, 'README.md'))) missing.push(path.relative(ROOT, d));
        walk(d);
      }
    };
    walk(path.join(ROOT, 'src'));
    expect(missing).toEqual([]);
  });
});
