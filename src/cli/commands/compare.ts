import { Command, Option } from 'commander';
import { DEFAULT_BACKBONE } from '../../backbones/zoo.js';
import { parseFractions } from '../../data/split.js';
import { ARCHITECTURES, DEFAULT_ARCH } from '../../engine/architectures.js';
import { compareOnFolder } from '../../train/compare.js';
import type { RunRequest } from '../../train/types.js';
import { expandExclude, resolveDataArg } from '../../datasets/resolve.js';
import { OPTIMIZERS } from '../../engine/optimizers.js';
import { createLogger } from '../../util/log.js';
import { calibrationLines, metricsTable, table } from '../format.js';
import { givenOptions, int, list, oneOf, positive, size, withSignals } from '../options.js';

export function compareCommand(): Command {
  return new Command('compare')
    .summary("the classic notebook: a CNN from scratch vs transfer learning, on one split")
    .description(
      'Train two models on the same split with the same optimizer and hyperparameters: (1) a small CNN from scratch ' +
        "(--arch, the Keras notebook's by default) and (2) a new softmax head on a frozen pretrained backbone (features " +
        'from the cache). Prints both Keras-style summaries and per-epoch histories, evaluates both on the test split, ' +
        'and writes the notebook\'s figure (validation loss left, validation accuracy right, per epoch) as compare.png ' +
        'and compare.svg, compare.json (histories, test results, wall times), report.html, and a run folder per model ' +
        '(scratch/ and transfer/) that tlearn predict, evaluate and export accept.\n\n' +
        'The scratch side writes a checkpoint at the end of every epoch (in scratch/checkpoint/); a stopped or killed compare continues with `tlearn compare --resume <folder>`.',
    )
    .argument('[data]', 'dataset folder (one sub-folder per class), or dataset name (tlearn datasets list; a path wins); not needed with --resume or --from')
    .option('--exclude <classes>', 'comma-separated class folders to leave out; for a named dataset also a named list (caltech101: notebook)', list)
    .option('--split <fractions>', 'train,val,test fractions', parseFractions, [0.7, 0.15, 0.15])
    .addOption(new Option('--split-mode <mode>', 'stratified or random (the notebook\'s plain shuffle)').choices(['stratified', 'random']).default('stratified'))
    .option('--seed <n>', 'seed for the split, initial weights, shuffling and dropout', int('--seed', 0), 42)
    .option('--backbone <name|folder>', 'the transfer side\'s backbone: zoo name or TF.js layers model folder', DEFAULT_BACKBONE)
    .addOption(new Option('--arch <name>', `the scratch side's CNN (${Object.keys(ARCHITECTURES).join(', ')})`).default(DEFAULT_ARCH))
    .option('--input-size <HxW>', 'the scratch CNN\'s input size (default 224x224)', size('--input-size'))
    .option('--micro-batch <n>', 'scratch: images per onnxruntime run (default 8 at 224x224)', int('--micro-batch'))
    .addOption(new Option('--optimizer <name>', 'optimizer for both').argParser(oneOf('--optimizer', OPTIMIZERS)).default('adam'))
    .option('--lr <rate>', 'learning rate for both (default: the optimizer\'s Keras default)', positive('--lr'))
    .option('--epochs <n>', 'epochs for both', int('--epochs'), 10)
    .option('--batch-size <n>', 'batch size for both', int('--batch-size'), 128)
    .option('--no-calibrate', 'keep the raw probabilities of both models (by default each gets a temperature fitted on the validation split and folded into its final layer)')
    .option('--out <dir>', 'output folder (default runs/compare-<timestamp>)')
    .option('--resume <folder>', 'continue a stopped or killed compare from its last checkpoint, with its recorded options and split')
    .option('--from <folder>', 'repeat a compare with its recorded options (flags given here override them) on the data as it is now')
    .option('--force', 'go on even when the data check finds identical files with different labels or symbolic link loops')
    .option('--threads <n>', 'onnxruntime threads (default: all cores)', int('--threads'))
    .option('--json', 'print compare.json\'s content on stdout (logs stay on stderr)')
    .option('-q, --quiet', 'no progress or logs on stderr')
    .action(async (data: string | undefined, o: any, cmd: Command) => {
      const log = createLogger({ quiet: o.quiet });
      const d = data === undefined ? undefined : await resolveDataArg(data, { logger: log });
      const r = await withSignals((signal) => compareOnFolder(givenOptions(cmd, o, {
        data: d?.folder,
        exclude: d ? expandExclude(o.exclude, d) : o.exclude,
        split: o.split,
        splitMode: o.splitMode,
        seed: o.seed,
        backbone: o.backbone,
        arch: o.arch,
        inputSize: o.inputSize,
        microBatch: o.microBatch,
        optimizer: o.optimizer,
        lr: o.lr,
        epochs: o.epochs,
        batchSize: o.batchSize,
        calibrate: o.calibrate,
        out: o.out,
        threads: o.threads,
        force: o.force,
        resume: o.resume,
        from: o.from,
      }, log, signal) as RunRequest));
      const text = [
        '',
        'test evaluation:',
        metricsTable([
          ['scratch', r.runs.scratch.metrics.test],
          ['transfer', r.runs.transfer.metrics.test],
        ]),
        '',
        table(
          [
            ['', 'scratch', 'transfer'],
            ['params (trained)', `${r.scratch.params.total.toLocaleString('en-US')} (${r.scratch.params.trainable.toLocaleString('en-US')})`, `${r.transfer.params.total.toLocaleString('en-US')} (${r.transfer.params.trainable.toLocaleString('en-US')})`],
            ['wall time', `${r.scratch.wallSeconds.toFixed(1)} s`, `${r.transfer.wallSeconds.toFixed(1)} s`],
            ['seconds per epoch', r.scratch.secondsPerEpoch.toFixed(1), r.transfer.secondsPerEpoch.toFixed(2)],
          ],
          ['l', 'r', 'r'],
        ),
        '',
        ...calibrationLines(r.runs.scratch.metrics.calibration).map((l) => (l ? `scratch ${l}` : l)),
        ...calibrationLines(r.runs.transfer.metrics.calibration).map((l) => (l ? `transfer ${l}` : l)),
        `figure: ${r.figure.png} (and .svg)`,
        `report: ${r.report.html}`,
        `compare.json: ${r.outDir}/compare.json`,
      ].join('\n');
      if (o.json) {
        log.info(text);
        const { readFile } = await import('node:fs/promises');
        process.stdout.write(`${JSON.stringify(JSON.parse(await readFile(`${r.outDir}/compare.json`, 'utf8')))}\n`);
      } else process.stdout.write(`${text}\n`);
    });
}
