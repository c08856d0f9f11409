import { Command } from 'commander';
import { evaluateFolder } from '../../evaluate/run.js';
import { resolveDataArg } from '../../datasets/resolve.js';
import { createLogger } from '../../util/log.js';
import { confusedLines, metricsTable } from '../format.js';
import { describeRejection } from '../../classifier/threshold.js';
import { int, probability } from '../options.js';
import { tfliteOptions, withTfliteOptions } from '../tflite-options.js';

export function evaluateCommand(): Command {
  return withTfliteOptions(new Command('evaluate')
    .summary('metrics and a report for a trained classifier on a labelled folder')
    .description(
      'Evaluate a classifier (run folder, model folder, exported .onnx, or a .tflite classifier with its labels) on ' +
        'any folder of class folders.\n' +
        'Classes the model does not know are reported and left out; for a dataset with train/ val/ test/ folders, the\n' +
        'test/ folder is evaluated (val/ if there is no test/). Writes metrics.json, predictions.csv and report.html\n' +
        '(with the plots as PNG) to --out.',
    )
    .argument('<model>', 'run folder, model folder, .onnx or .tflite file')
    .argument('<data>', 'labelled folder (one sub-folder per class), or dataset name (tlearn datasets list; a path wins)')
    .option('--out <dir>', 'output folder (default runs/evaluate-<timestamp>)')
    .option('--threads <n>', 'threads for the forward pass (default: all cores)', int('--threads'))
    .option('--tta', 'test-time augmentation: average the predictions of flipped and centre-cropped views')
    .option('--threshold <p>', 'open-set threshold to report on (default: the model\'s, chosen on the validation split at training time; 0: none)', probability('--threshold'))
    .option('--json', 'print the metrics as one JSON object on stdout')
    .option('-q, --quiet', 'no progress on stderr'))
    .action(async (model: string, data: string, o: any) => {
      const log = createLogger({ quiet: o.quiet });
      const d = await resolveDataArg(data, { logger: log });
      const r = await evaluateFolder(model, d.folder, { out: o.out, threads: o.threads, tta: o.tta, threshold: o.threshold, classifier: tfliteOptions(o), logger: log });
      for (const f of r.skippedFiles) log.info(`  skipped ${f.path}: ${f.reason}`);
      const text = [
        `evaluated ${r.metrics.n} images (${r.scope}) in ${r.seconds.toFixed(1)}s`,
        metricsTable([['evaluation', r.metrics]]),
        '',
        'most confused (true → predicted):',
        ...(confusedLines(r.metrics).length ? confusedLines(r.metrics) : ['  none']),
        '',
        `open-set threshold: ${r.openSet.threshold > 0 ? describeRejection(r.openSet) : 'none'}`,
        `report: ${r.report.html}`,
      ].join('\n');
      if (o.json) {
        log.info(text);
        const { report, ...rest } = r;
        process.stdout.write(`${JSON.stringify({ ...rest, report: report.html })}\n`);
      } else process.stdout.write(`${text}\n`);
    });
}
