/**
 * npm run bench: every speed measurement in one process run (compare ratios, not absolute numbers across
 * machines); writes the table between the bench markers in BENCHMARKS.md.
 *
 *   npm run bench                       all sections (about 15 minutes on an idle 2-core machine)
 *   npm run bench -- --json             the same, and one JSON object with the headline numbers on stdout
 *   npm run bench -- --quick            fewer images, no end-to-end runs (a smoke test)
 *   npm run bench -- --store-vectors N  vectors for the features-store section (default 1,000,000)
 *   npm run bench -- --only a,b         only these sections: pipeline, decode, train, epochs, compare, store, labels
 *   npm run bench -- --epoch-images N   training images of the epochs section's subset (default 1,024)
 *
 * The retired legacy decoder's before/after rows stay in BENCHMARKS.md with their date and commit.
 */
import { existsSync, promises as fs, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBackbone } from '../src/backbones/load.js';
import { zooStatus } from '../src/backbones/model-cache.js';
import { describeDecoder } from '../src/image/decode.js';
import { loadImageFolder } from '../src/data/discover.js';
import { Rng } from '../src/util/rng.js';
import { CALTECH, EXCLUDE, log, MOBILENET, results, ROOT, rows } from './common.js';
import { machine, writeBenchSection } from './report.js';
import { benchBackbone, benchDecoders } from './pipeline.js';
import { benchStore } from './store.js';
import { benchCompareRss, benchEpochs, benchTrain } from './training.js';
import { benchLabels } from './labels.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const json = argv.includes('--json');
const flag = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const storeVectors = Number(flag('--store-vectors') ?? (quick ? 20_000 : 1_000_000));
const epochImages = flag('--epoch-images') === undefined ? undefined : Number(flag('--epoch-images'));
const SECTIONS = ['pipeline', 'decode', 'train', 'epochs', 'compare', 'store', 'labels'];
const only = flag('--only')?.split(',') ?? SECTIONS;

/**
 * The bench section of BENCHMARKS.md: every row tagged with its section (an HTML comment), so that a run with
 * --only replaces its sections' rows and keeps the others, saying when each was measured.
 */
function renderSection(old: string, measured: string): string {
  const prev = /<!-- bench:start -->([\s\S]*)<!-- bench:end -->/.exec(old)?.[1] ?? '';
  const kept = new Map<string, string[]>();
  for (const line of prev.split('\n')) {
    const m = /<!-- s:(\w+) --> \|$/.exec(line);
    if (m && !only.includes(m[1]!)) kept.set(m[1]!, [...(kept.get(m[1]!) ?? []), line]);
  }
  const fresh = rows.map((r) => `| ${r.what} | ${r.value} | ${r.note ?? ''} <!-- s:${r.section} --> |`);
  const lines = SECTIONS.flatMap((s) => (only.includes(s) ? fresh.filter((l) => l.endsWith(`<!-- s:${s} --> |`)) : (kept.get(s) ?? [])));
  const history = /^Measured [^\n]*/m.exec(prev)?.[0];
  const header = only.length === SECTIONS.length || !history ? `Measured ${measured}.` : `${history.replace(/\.$/, '')}; re-measured (${only.join(', ')}) ${measured}.`;
  return [header, '', '| measurement | result | notes |', '|---|---|---|', ...lines].join('\n');
}

async function main(): Promise<void> {
  const bad = only.filter((s) => !SECTIONS.includes(s));
  if (bad.length || !(storeVectors >= 1000) || (epochImages !== undefined && !(Number.isInteger(epochImages) && epochImages >= 32))) {
    log(bad.length ? `--only: unknown section ${bad.join(', ')} (sections: ${SECTIONS.join(', ')})` : storeVectors >= 1000 ? '--epoch-images needs a whole number of training images >= 32' : '--store-vectors needs a number >= 1000');
    process.exitCode = 1;
    return;
  }
  if (!existsSync(CALTECH) || !existsSync(MOBILENET)) {
    log(`npm run bench needs ${CALTECH} and ${MOBILENET} (../shared); nothing measured`);
    process.exitCode = 1;
    return;
  }
  process.env.TLEARN_HOME ??= mkdtempSync(path.join(os.tmpdir(), 'tlearn-bench-cache-'));
  const t0 = performance.now();
  const ds = await loadImageFolder(CALTECH, { exclude: EXCLUDE.split(',') });
  const files = ds.images.map((i) => i.path).filter((_, i) => !quick || i % 10 === 0);
  const shuffled = new Rng(3).shuffle(ds.images.map((i) => i));
  results.date = new Date().toISOString().slice(0, 10);
  results.machine = machine();
  results.decoder = describeDecoder();
  const tag = (name: string, from: number) => rows.slice(from).forEach((r) => (r.section ??= name));
  let from = 0;
  if (only.includes('pipeline')) {
    await benchBackbone('MobileNetV2-0.35 (../shared)', await loadBackbone(MOBILENET), files, quick, true);
    for (const s of await zooStatus()) {
      if (s.cached && s.entry.name !== 'mobilenet_v2_0.35') await benchBackbone(s.entry.name, await loadBackbone(s.entry.name), files.slice(0, 1500), quick, false);
    }
  }
  tag('pipeline', from);
  from = rows.length;
  if (only.includes('decode')) await benchDecoders(shuffled.slice(0, quick ? 200 : 1500).map((i) => i.path));
  tag('decode', from);
  from = rows.length;
  if (only.includes('train') && !quick) await benchTrain();
  tag('train', from);
  from = rows.length;
  if (only.includes('epochs')) await benchEpochs(shuffled, quick, epochImages);
  tag('epochs', from);
  from = rows.length;
  if (only.includes('compare') && !quick) await benchCompareRss(shuffled, ds.classes, 20, 1);
  tag('compare', from);
  from = rows.length;
  if (only.includes('store')) await benchStore(storeVectors);
  tag('store', from);
  from = rows.length;
  if (only.includes('labels') && !quick) await benchLabels();
  tag('labels', from);
  results.benchSeconds = Math.round((performance.now() - t0) / 1000);

  const file = path.join(ROOT, 'BENCHMARKS.md');
  const old = existsSync(file) ? await fs.readFile(file, 'utf8') : '# Benchmarks\n\n<!-- bench:start -->\n<!-- bench:end -->\n';
  const cmd = `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`;
  await writeBenchSection('bench', renderSection(old, `${results.date} on ${results.machine}, with \`${cmd}\` (${results.benchSeconds} s)`));
  if (json) process.stdout.write(`${JSON.stringify(results)}\n`);
  else process.stdout.write(`${rows.map((r) => `${r.what}: ${r.value}${r.note ? ` (${r.note})` : ''}`).join('\n')}\n`);
}

await main();
