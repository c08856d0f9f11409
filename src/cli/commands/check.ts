import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { PREPROCESS_MODES } from '../../backbones/preprocess.js';
import { DEFAULT_BACKBONE } from '../../backbones/zoo.js';
import { RESIZE_MODES } from '../../image/decode.js';
import { LABEL_QUALITY_SCORES } from '../../data/label-issues.js';
import { checkDataset, formatCheck } from '../../data/check.js';
import { formatLabelIssues, LabelIssuesError, labelIssuesCsv, labelIssuesForFolder, labelScoresCsv, type FolderLabelIssues } from '../../train/label-issues.js';
import { expandExclude, resolveDataArg } from '../../datasets/resolve.js';
import { parseFractions } from '../../data/split.js';
import { createLogger } from '../../util/log.js';
import { writeFileAtomic } from '../../util/fs.js';
import { int, list, oneOf, size } from '../options.js';

export function checkCommand(): Command {
  return new Command('check')
    .summary('audit a dataset folder without training; --labels finds the images most likely labelled wrong')
    .description(
      [
        "Check a folder of class folders as `tlearn train` would read it, in seconds, without training: classes and image counts, formats, every skipped file with its reason (not an image, unreadable, hidden, symbolic link loops, dangling links, second paths to the same file), identical files within a class and across classes (a label conflict), near-duplicates (a perceptual hash of each decoded image) that would land in different splits, images smaller than the model's input, and class imbalance.",
        'Every image is decoded once, small; the results are remembered by content in $TLEARN_HOME/checks, so a second check is quicker.',
        "With --labels, also the images most likely labelled wrong: every image goes through the backbone once (the features cache, as train uses), --folds heads each trained on the other folds predict the held-out images (temperature-scaled), and confident learning (cleanlab's method) with neighbour agreement (an image some of whose 10 nearest neighbours in feature space share its label is not flagged) estimates how many labels are wrong and flags that many, lowest self-confidence first, each with the label it more likely has. Outliers (far from every other image) and near-duplicates with different labels join the list. Per class: the estimated share of wrong labels and the classes it is swapped with. --csv writes the list (file,given,suggested,score,kind; file relative to the folder) for `tlearn train --exclude-files`.",
        'Exits 0 when the folder can be trained on, 1 when it cannot (then the reason is the one line on stderr); label issues found do not change the exit status, a label check that cannot run (one class, too few images) exits 1 with the reason. `tlearn train` stops on label conflicts and symbolic link loops unless given --force.',
      ].join('\n\n'),
    )
    .argument('<data>', 'dataset folder, or dataset name (tlearn datasets list; a path wins)')
    .option('--exclude <classes>', 'comma-separated class folders to leave out; for a named dataset also a named list (caltech101: notebook)', list)
    .option('--split <fractions>', 'train,val,test fractions (to see which near-duplicates land in different splits)', parseFractions, [0.7, 0.15, 0.15])
    .addOption(new Option('--split-mode <mode>', 'stratified or random, as for train').choices(['stratified', 'random']).default('stratified'))
    .option('--seed <n>', 'split seed, as for train; with --labels also the seed of the folds and heads', int('--seed', 0), 42)
    .option('--input-size <HxW>', "the model's input size, for the small-image check (default 224, MobileNetV2's)", size('--input-size'))
    .option('--near-distance <bits>', 'largest perceptual-hash distance (of 128 bits) of a near-duplicate pair', int('--near-distance', 0), 8)
    .option('--labels', 'also find the images most likely labelled wrong (confident learning on out-of-fold predictions), outliers and near-duplicates with different labels')
    .option('--folds <k>', '--labels: folds of the out-of-fold heads', int('--folds', 2), 5)
    .addOption(new Option('--rank-by <score>', '--labels: label-quality score that ranks the issues').choices(LABEL_QUALITY_SCORES).default('self_confidence'))
    .option('--no-neighbour-agreement', '--labels: plain confident learning (prune by noise rate), without taking an image whose nearest neighbours share its label as correct: better when two look-alike classes are swapped wholesale, worse on scattered noise')
    .option('--csv <file>', '--labels: write the flagged images as CSV (file,given,suggested,score,kind), best-ranked first')
    .option('--scores <file>', '--labels: write every checked image\'s label-quality score as CSV (file,given,suggested,score), lowest first')
    .option('--top <n>', '--labels: how many flagged images to print', int('--top', 0), 30)
    .option('--backbone <name|folder>', '--labels: zoo name (see `tlearn models list`) or a TF.js layers model folder, as for train', DEFAULT_BACKBONE)
    .option('--cut-at <layer>', '--labels: for a local backbone: take features from this layer (global average pooled)')
    .addOption(new Option('--preprocess <mode>', "--labels: override the backbone's pixel preprocessing (tf, caffe, torch, unit, raw)").argParser(oneOf('--preprocess', PREPROCESS_MODES)))
    .addOption(new Option('--resize <mode>', '--labels: squash (Keras load_img) or center-crop').argParser(oneOf('--resize', RESIZE_MODES)))
    .option('--weights <file.h5>', '--labels: zoo backbone: use this Keras .h5 weights file')
    .option('--no-cache', '--labels: do not read or write the features cache')
    .option('--threads <n>', '--labels: threads for the backbone forward pass (default: all cores)', int('--threads'))
    .option('--json', 'print the report as one JSON object on stdout (with --labels, under "labels")')
    .option('-q, --quiet', 'no progress on stderr')
    .action(async (data: string, o: any) => {
      const base = createLogger({ quiet: o.quiet || o.json });
      // a small folder is checked at once: progress only for large ones
      const log = { ...base, progress: (label: string, total: number) => (total >= 500 ? base.progress(label, total) : { tick: () => {}, done: () => {} }) };
      if (!o.labels) for (const flag of ['csv', 'scores', 'cutAt', 'preprocess', 'resize', 'weights']) if (o[flag] !== undefined) throw new Error(`--${flag.replace(/[A-Z]/g, (c: string) => `-${c.toLowerCase()}`)} applies to --labels`);
      const d = await resolveDataArg(data, { logger: base });
      const exclude = expandExclude(o.exclude, d);
      const c = await checkDataset(d.folder, { exclude, split: o.split, splitMode: o.splitMode, seed: o.seed, inputSize: o.inputSize, nearDistance: o.nearDistance, logger: log });
      let labels: FolderLabelIssues | undefined;
      let labelError: string | undefined;
      if (o.labels && !c.classes.length) labelError = c.error;
      else if (o.labels) {
        labels = await labelIssuesForFolder(d.folder, {
          exclude,
          split: o.split,
          splitMode: o.splitMode,
          seed: o.seed,
          folds: o.folds,
          rankBy: o.rankBy,
          neighbourAgreement: o.neighbourAgreement,
          backbone: o.backbone,
          cutAt: o.cutAt,
          preprocessing: o.preprocess,
          resize: o.resize,
          weights: o.weights,
          cache: o.cache,
          threads: o.threads,
          logger: log,
        }).catch((e) => {
          if (!(e instanceof LabelIssuesError)) throw e;
          labelError = e.message;
          return undefined;
        });
        if (labels && o.csv) {
          await fs.mkdir(path.dirname(path.resolve(o.csv)), { recursive: true });
          await writeFileAtomic(o.csv, labelIssuesCsv(labels.issues));
        }
        if (labels && o.scores) {
          await fs.mkdir(path.dirname(path.resolve(o.scores)), { recursive: true });
          await writeFileAtomic(o.scores, labelScoresCsv(labels));
        }
      }
      // the JSON keeps the flagged images; every image's score goes to --scores
      const { ranking: _ranking, ...labelsJson } = labels ?? { ranking: undefined };
      if (o.json) process.stdout.write(`${JSON.stringify(o.labels ? { ...c, labels: labels ? labelsJson : { error: labelError } } : c)}\n`);
      else {
        const lines = formatCheck(c).filter((l) => !l.startsWith('not trainable: '));
        if (labels) lines.push(...formatLabelIssues(labels, o.top));
        if (labels && o.csv) lines.push(`  wrote ${labels.issues.length} flagged image${labels.issues.length === 1 ? '' : 's'} to ${o.csv}`);
        process.stdout.write(`${lines.join('\n')}\n`);
      }
      if (!c.trainable) {
        process.stderr.write(`tlearn check: not trainable: ${c.error}\n`);
        process.exitCode = 1;
      }
      if (labelError !== undefined) {
        process.stderr.write(`tlearn check --labels: cannot look for wrong labels: ${labelError}\n`);
        process.exitCode = 1;
      }
    });
}
