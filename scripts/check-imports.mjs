// The import graph of src/: no file may reach itself through its imports (no circle, type-only imports
// included), and no folder may import a folder above it in the data flow (README, Architecture).
// Usage: node scripts/check-imports.mjs [srcDir]   (exit 1 and a list of what is wrong, else exit 0)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The floors, lowest first. A folder may import its own floor and any floor below it, never one above.
 * Folders on one floor (a list) do not import each other unless an exception below says so.
 */
export const FLOORS = [
  ['util', 'version'],
  ['image'],
  ['data'],
  ['backbones'],
  ['onnx'],
  ['runtime'],
  ['features'],
  ['engine'],
  ['classifier', 'models'],
  ['evaluate'],
  ['report'],
  ['train'],
  ['datasets', 'distributed'],
  ['serve'],
  ['export'],
  ['studio'],
  ['cli', 'index'],
];

/** Edges allowed against the floors, each with its reason. */
export const EXCEPTIONS = [
  ['backbones', 'runtime', 'backbones builds the Keras applications with the tfjs loader in runtime/tfjs.ts'],
  ['backbones', 'onnx', 'backbones converts the models it loads (TFLite) to ONNX'],
  ['evaluate', 'report', 'tlearn evaluate (evaluate/run.ts) writes its report with report/, which shows evaluate metrics'],
];

const IMPORT = /(?:^|[\s;}])(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function listTs(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listTs(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** file -> the src files it imports (relative imports only). */
export function importGraph(srcDir) {
  const files = listTs(srcDir);
  const known = new Set(files);
  const graph = new Map();
  for (const f of files) {
    const text = readFileSync(f, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
    const deps = new Set();
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2];
      const target = path.resolve(path.dirname(f), spec).replace(/\.js$/, '.ts');
      if (known.has(target)) deps.add(target);
      else if (known.has(path.join(target.replace(/\.ts$/, ''), 'index.ts'))) deps.add(path.join(target.replace(/\.ts$/, ''), 'index.ts'));
    }
    graph.set(f, [...deps]);
  }
  return graph;
}

/** The strongly connected components with more than one file (or a file importing itself): Tarjan's algorithm. */
export function findCycles(graph) {
  let index = 0;
  const stack = [];
  const on = new Set();
  const idx = new Map();
  const low = new Map();
  const cycles = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return cycles;
}

/** The folder (room) of a file under srcDir: its first path segment, or the file's own name at the top. */
function room(srcDir, file) {
  const rel = path.relative(srcDir, file).split(path.sep);
  return rel.length > 1 ? rel[0] : rel[0].replace(/\.ts$/, '');
}

/** Imports that go up the floors (or sideways between folders of one floor), less the exceptions. */
export function findLayerViolations(srcDir, graph) {
  const floor = new Map();
  FLOORS.forEach((names, i) => names.forEach((n) => floor.set(n, i)));
  const allowed = new Set(EXCEPTIONS.map(([a, b]) => `${a}>${b}`));
  const out = [];
  for (const [f, deps] of graph) {
    const a = room(srcDir, f);
    for (const d of deps) {
      const b = room(srcDir, d);
      if (a === b || allowed.has(`${a}>${b}`)) continue;
      const fa = floor.get(a);
      const fb = floor.get(b);
      if (fa === undefined) out.push(`${path.relative(srcDir, f)}: folder "${a}" has no floor in scripts/check-imports.mjs`);
      else if (fb === undefined) out.push(`${path.relative(srcDir, d)}: folder "${b}" has no floor in scripts/check-imports.mjs`);
      else if (fb >= fa) out.push(`${path.relative(srcDir, f)} imports ${path.relative(srcDir, d)}: ${a} may not import ${b} (${fb > fa ? 'a floor above it' : 'a folder beside it'})`);
    }
  }
  return [...new Set(out)];
}

export function checkImports(srcDir) {
  const graph = importGraph(srcDir);
  const cycles = findCycles(graph).map((c) => `import circle: ${c.map((f) => path.relative(srcDir, f)).join(' <-> ')}`);
  return { files: graph.size, problems: [...cycles, ...findLayerViolations(srcDir, graph)] };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const srcDir = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src'));
  const { files, problems } = checkImports(srcDir);
  if (problems.length) {
    process.stderr.write(`${problems.join('\n')}\n${problems.length} problem(s) in the import graph of ${files} files\n`);
    process.exit(1);
  }
  process.stdout.write(`import graph of ${files} files: no circle, every import goes down the floors\n`);
}
