/**
 * npm run bench:recipes -- <recipe names...>: runs each named training recipe (`tlearn train` with its flags, in a
 * child process) on Caltech-97 (seed 42) and on ants/bees, and appends one row per run to ACCURACY.md: validation
 * and test accuracy, test ECE, seconds per epoch, wall time and peak RSS. Recipes are to be compared by
 * validation accuracy only; the test column is there to report the chosen one, never to choose.
 *
 *   npm run bench:recipes -- --list
 *   npm run bench:recipes -- finetune finetune-bn-train finetune-ema
 *   npm run bench:recipes -- finetune --data caltech97 --seeds 42,1,2
 *   npm run bench:recipes -- my-recipe='--mode finetune --augment --label-smoothing 0'
 *   npm run bench:recipes -- finetune --extra "--epochs 1 --head-epochs 1"   (a smoke test; rows say so)
 *
 * Features are cached in $TLEARN_HOME (default ~/.cache/tlearn), so only the first run of a dataset computes them.
 */
import { existsSync, promises as fs, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appendRows, meanSd, parseBenchArgs, RECIPES, RecipeArgError, secondsPerEpoch, tableRow, type RecipeResult } from './recipes-lib.js';
import { log, machine, MOBILENET, ROOT, SHARED, timed } from './report.js';

const PREAMBLE = `# Accuracy

Training recipes measured with \`npm run bench:recipes\` (bench/recipes.ts): one row per run, appended. Caltech-97 is
Caltech-101 without BACKGROUND_Google, Motorbikes, airplanes, Faces_easy and Faces (6,209 images, 70/15/15
stratified split); ants/bees is hymenoptera_data with its own val/ folder held out as the test split. Backbone:
MobileNetV2-0.35 from ../shared. **Recipes are chosen by validation accuracy only**; test accuracy is reported
for the chosen one, never used to choose. Probabilities are temperature-scaled (fitted on validation), which
never changes accuracy. s/epoch is the trained stage (fine-tuning: the second stage); wall is the whole command.
`;

async function main(): Promise<void> {
  let args;
  try {
    args = parseBenchArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof RecipeArgError) {
      log(`bench:recipes: ${e.message}`);
      process.exitCode = 2;
      return;
    }
    throw e;
  }
  if (args.list) {
    for (const r of RECIPES) log(`${r.name.padEnd(32)} ${r.note}\n${''.padEnd(32)} tlearn train <data> ${r.flags.join(' ')}`);
    return;
  }
  const missing = [MOBILENET, ...args.datasets.map((d) => path.join(SHARED, d.path))].filter((p) => !existsSync(p));
  if (missing.length) {
    log(`bench:recipes needs ${missing.join(', ')} (../shared); nothing measured`);
    process.exitCode = 1;
    return;
  }
  const outRoot = mkdtempSync(path.join(os.tmpdir(), 'tlearn-recipes-'));
  const date = new Date().toISOString().slice(0, 10);
  const file = path.resolve(ROOT, args.file);
  log(`machine: ${machine()}; run folders under ${outRoot}`);
  const results: RecipeResult[] = [];
  for (const ds of args.datasets) {
    for (const recipe of args.recipes) {
      for (const seed of args.seeds) {
        const out = path.join(outRoot, `${ds.name}-${recipe.name}-${seed}`);
        const cli = [path.join(ROOT, 'bin/tlearn.js'), 'train', path.join(SHARED, ds.path), ...ds.flags, '--backbone', MOBILENET, ...recipe.flags, ...args.extra, '--seed', String(seed), '--out', out, '--json', '--quiet'];
        log(`\n${ds.name} / ${recipe.name} / seed ${seed}: tlearn ${cli.slice(1).join(' ')}`);
        let run;
        try {
          run = await timed(cli, {});
        } catch (e) {
          log(`  failed: ${(e as Error).message}`);
          process.exitCode = 1;
          continue;
        }
        const m = JSON.parse(run.stdout);
        const r: RecipeResult = {
          date,
          dataset: ds.name,
          recipe,
          extra: args.extra,
          seed,
          valAcc: m.val.accuracy,
          testAcc: m.test.accuracy,
          testEce: m.test.ece,
          secondsPerEpoch: secondsPerEpoch(m),
          wallSeconds: run.seconds,
          peakRssMB: run.rssMB,
        };
        results.push(r);
        log(`  val acc ${r.valAcc.toFixed(4)}, test acc ${r.testAcc.toFixed(4)}, ${r.secondsPerEpoch.toFixed(1)} s/epoch, wall ${r.wallSeconds.toFixed(0)} s, peak RSS ${r.peakRssMB?.toFixed(0) ?? '?'} MB`);
        // each row lands as soon as it is measured, so a long session that is stopped keeps what it did
        const old = existsSync(file) ? await fs.readFile(file, 'utf8') : undefined;
        await fs.writeFile(file, appendRows(old, [tableRow(r)], PREAMBLE));
      }
    }
  }
  log(`\nsummary (${machine()}); choose by val acc:`);
  for (const ds of args.datasets) {
    for (const recipe of args.recipes) {
      const rs = results.filter((r) => r.dataset === ds.name && r.recipe === recipe);
      if (!rs.length) continue;
      const v = meanSd(rs.map((r) => r.valAcc));
      const t = meanSd(rs.map((r) => r.testAcc));
      log(`  ${ds.name} ${recipe.name}: val acc ${v.mean.toFixed(4)}${rs.length > 1 ? ` ± ${v.sd.toFixed(4)}` : ''}, test acc ${t.mean.toFixed(4)}${rs.length > 1 ? ` ± ${t.sd.toFixed(4)}` : ''} (${rs.length} seed${rs.length > 1 ? 's' : ''})`);
    }
  }
  log(`rows appended to ${file}`);
}

await main();
