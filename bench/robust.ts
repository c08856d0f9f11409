/**
 * npm run bench:robust: what robustness costs, on Caltech-97 (../shared): walking the folder with every file
 * judged by its content, `tlearn check` cold (empty TLEARN_HOME: every image decoded once, small) and warm
 * (remembered by content), and writing a training checkpoint of the notebook CNN at 224x224 for 97 classes
 * (weights + Adam moments, flushed to disk) next to the epoch it follows. Rewrites its section of BENCHMARKS.md.
 */
import { existsSync, mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkDataset } from '../src/data/check.js';
import { loadImageFolder } from '../src/data/discover.js';
import { buildArchitecture } from '../src/engine/architectures.js';
import { saveLoopState, trainingFingerprint } from '../src/engine/network-state.js';
import { OnnxTrainer } from '../src/engine/onnx-trainer.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CALTECH = path.resolve(ROOT, '..', 'shared', 'datasets/caltech101/101_ObjectCategories');
const EXCLUDE = ['BACKGROUND_Google', 'Motorbikes', 'airplanes', 'Faces_easy', 'Faces'];
const rows: Array<[string, string, string]> = [];
const log = (s: string) => process.stderr.write(`${s}\n`);

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const r = await fn();
  return [r, (performance.now() - t) / 1000];
}

async function main(): Promise<void> {
  if (!existsSync(CALTECH)) throw new Error(`bench:robust needs ${CALTECH} (see ../shared/README.md)`);
  process.env.TLEARN_HOME = mkdtempSync(path.join(os.tmpdir(), 'tlearn-bench-robust-'));
  const load = os.loadavg()[0]!;
  const [ds, walk] = await timed(() => loadImageFolder(CALTECH, { exclude: EXCLUDE }));
  rows.push(['walk Caltech-97 (every file judged by its first bytes, links followed once)', `${walk.toFixed(2)} s`, `${ds.images.length} images, ${ds.skipped.length} skipped`]);
  log(rows.at(-1)!.join(' | '));
  const [cold, coldS] = await timed(() => checkDataset(CALTECH, { exclude: EXCLUDE }));
  const near = cold.audit!.decoded!;
  rows.push(['tlearn check Caltech-97: cold (every image decoded once, small)', `${coldS.toFixed(1)} s`, `${(cold.usable / coldS).toFixed(0)} img/s; ${near.nearDuplicates.length} near-duplicate pairs (${near.nearCrossSplit} across splits), ${near.small.length} images smaller than 224x224`]);
  log(rows.at(-1)!.join(' | '));
  const [, warmS] = await timed(() => checkDataset(CALTECH, { exclude: EXCLUDE }));
  rows.push(['same check again: warm (remembered by content)', `${warmS.toFixed(1)} s`, `${((100 * warmS) / coldS).toFixed(0)}% of cold`]);
  log(rows.at(-1)!.join(' | '));

  const { artifacts } = await buildArchitecture('notebook-cnn', [224, 224], 97, 1);
  const trainer = await OnnxTrainer.create(artifacts, { trainable: () => true, microBatch: 8, optimizer: 'adam', seed: 1 });
  const file = path.join(process.env.TLEARN_HOME, 'state.bin');
  const state = { epoch: 1, batch: 0, step: 34, partial: { lossSum: 0, correct: 0, n: 0, seconds: 0 }, shuffleRng: 1, best: { loss: 1, epoch: 1, weights: trainer.snapshot() }, stale: 0, stoppedEarly: false, history: [], epochSeconds: [], failed: [] };
  const fp = trainingFingerprint(trainer, {});
  await saveLoopState(file, fp, trainer, state);
  const times: number[] = [];
  for (let i = 0; i < 5; i++) times.push((await timed(() => saveLoopState(file, fp, trainer, state)))[1]);
  const size = (await fs.stat(file)).size;
  const median = times.sort((a, b) => a - b)[2]!;
  rows.push(['checkpoint of the notebook CNN at 224x224, 97 classes (weights + Adam moments), written and flushed', `${(median * 1000).toFixed(0)} ms`, `${(size / 1e6).toFixed(1)} MB; median of 5; an epoch of Caltech-97 takes about 100 s (see above), so well under 1% of it`]);
  log(rows.at(-1)!.join(' | '));
  await trainer.close();
  await fs.rm(process.env.TLEARN_HOME, { recursive: true, force: true });

  const cpu = os.cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
  const table = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpu}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, with \`npm run bench:robust\`; load average ${load.toFixed(1)} at the start${load > os.availableParallelism() ? ' (other processes were using the machine: absolute times are inflated)' : ''}.`,
    '',
    '| measurement | result | notes |',
    '|---|---|---|',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
  const md = path.join(ROOT, 'BENCHMARKS.md');
  let text = await fs.readFile(md, 'utf8');
  const start = '<!-- bench-robust:start -->';
  const end = '<!-- bench-robust:end -->';
  const block = `${start}\n${table}\n${end}`;
  text = text.includes(start) ? text.replace(new RegExp(`${start}[\\s\\S]*?${end}`), block) : `${text.trimEnd()}\n\n## Robustness: walking, checking, checkpoints\n\n${block}\n`;
  await fs.writeFile(md, text);
  log('BENCHMARKS.md updated');
}

main().catch((e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exitCode = 1;
});
