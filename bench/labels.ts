/**
 * The `labels` section of npm run bench: `tlearn check --labels` on Caltech-97 (the default backbone, 5 folds),
 * cold (empty features cache and check cache: every image decoded and through the backbone) and warm (the same
 * command again: features and small decodes from the caches, only the fold heads, neighbours and confident
 * learning computed).
 */
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CALTECH, EXCLUDE, log, MOBILENET, results, rows, timed, TLEARN } from './common.js';

export async function benchLabels(): Promise<void> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'tlearn-bench-labels-'));
  const args = [TLEARN, 'check', CALTECH, '--exclude', EXCLUDE, '--labels', '--backbone', MOBILENET, '--json', '-q'];
  const cold = await timed(args, { TLEARN_HOME: home });
  const warm = await timed(args, { TLEARN_HOME: home });
  const [lc, lw] = [cold, warm].map((r) => JSON.parse(r.stdout).labels);
  log(`check --labels cold ${cold.seconds.toFixed(1)} s, warm ${warm.seconds.toFixed(1)} s`);
  const stages = (l: any) => `features ${l.seconds.features.toFixed(1)}, folds ${l.seconds.folds.toFixed(1)}, neighbours ${l.seconds.neighbours.toFixed(1)}, duplicates ${l.seconds.duplicates.toFixed(1)}`;
  rows.push(
    { what: 'tlearn check --labels Caltech-97, MobileNetV2-0.35, 5 folds: cold (empty caches)', value: `${cold.seconds.toFixed(1)} s`, note: `${cold.cpuSeconds ? `${cold.cpuSeconds.toFixed(0)} CPU s; ` : ''}peak RSS ${cold.rssMB?.toFixed(0) ?? '?'} MB; ${lc.issues.length} flagged; stages (s): ${stages(lc)} (plus the plain check's decode)` },
    { what: 'same command again: warm (features and decodes from the caches)', value: `${warm.seconds.toFixed(1)} s`, note: `${((100 * warm.seconds) / cold.seconds).toFixed(0)}% of cold; peak RSS ${warm.rssMB?.toFixed(0) ?? '?'} MB; stages (s): ${stages(lw)}` },
  );
  Object.assign(results, { coldCheckLabelsSeconds: Number(cold.seconds.toFixed(1)), warmCheckLabelsSeconds: Number(warm.seconds.toFixed(1)) });
  await fs.rm(home, { recursive: true, force: true });
}
