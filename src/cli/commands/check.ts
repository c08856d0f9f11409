import { Command, Option } from 'commander';
import { checkDataset, formatCheck } from '../../data/check.js';
import { expandExclude, resolveDataArg } from '../../datasets/resolve.js';
import { parseFractions } from '../../data/split.js';
import { createLogger } from '../../util/log.js';
import { int, list, size } from '../options.js';

export function checkCommand(): Command {
  return new Command('check')
    .summary('audit a dataset folder without training')
    .description(
      [
        "Check a folder of class folders as `tlearn train` would read it, in seconds, without training: classes and image counts, formats, every skipped file with its reason (not an image, unreadable, hidden, symbolic link loops, dangling links, second paths to the same file), identical files within a class and across classes (a label conflict), near-duplicates (a perceptual hash of each decoded image) that would land in different splits, images smaller than the model's input, and class imbalance.",
        'Every image is decoded once, small; the results are remembered by content in $TLEARN_HOME/checks, so a second check is quicker.',
        'Exits 0 when the folder can be trained on, 1 when it cannot (then the reason is the one line on stderr). `tlearn train` stops on label conflicts and symbolic link loops unless given --force.',
      ].join('\n\n'),
    )
    .argument('<data>', 'dataset folder, or dataset name (tlearn datasets list; a path wins)')
    .option('--exclude <classes>', 'comma-separated class folders to leave out; for a named dataset also a named list (caltech101: notebook)', list)
    .option('--split <fractions>', 'train,val,test fractions (to see which near-duplicates land in different splits)', parseFractions, [0.7, 0.15, 0.15])
    .addOption(new Option('--split-mode <mode>', 'stratified or random, as for train').choices(['stratified', 'random']).default('stratified'))
    .option('--seed <n>', 'split seed, as for train', int('--seed', 0), 42)
    .option('--input-size <HxW>', "the model's input size, for the small-image check (default 224, MobileNetV2's)", size('--input-size'))
    .option('--near-distance <bits>', 'largest perceptual-hash distance (of 128 bits) of a near-duplicate pair', int('--near-distance', 0), 8)
    .option('--json', 'print the report as one JSON object on stdout')
    .option('-q, --quiet', 'no progress on stderr')
    .action(async (data: string, o: any) => {
      const base = createLogger({ quiet: o.quiet || o.json });
      // a small folder is checked at once: progress only for large ones
      const log = { ...base, progress: (label: string, total: number) => (total >= 500 ? base.progress(label, total) : { tick: () => {}, done: () => {} }) };
      const d = await resolveDataArg(data, { logger: base });
      const c = await checkDataset(d.folder, { exclude: expandExclude(o.exclude, d), split: o.split, splitMode: o.splitMode, seed: o.seed, inputSize: o.inputSize, nearDistance: o.nearDistance, logger: log });
      if (o.json) process.stdout.write(`${JSON.stringify(c)}\n`);
      else process.stdout.write(`${formatCheck(c).filter((l) => !l.startsWith('not trainable: ')).join('\n')}\n`);
      if (!c.trainable) {
        process.stderr.write(`tlearn check: not trainable: ${c.error}\n`);
        process.exitCode = 1;
      }
    });
}
