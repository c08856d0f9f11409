import { Command } from 'commander';
import { loadClassifier } from '../../classifier/load.js';
import { predictImages } from '../../classifier/predict.js';
import { createLogger } from '../../util/log.js';
import { int, probability } from '../options.js';
import { tfliteOptions, withTfliteOptions } from '../tflite-options.js';

function csvCell(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function predictCommand(): Command {
  return withTfliteOptions(new Command('predict')
    .summary('class probabilities for images')
    .description(
      'Predict the class of images with a trained classifier: a run folder, its model/ folder, an exported .onnx file ' +
        '(with its metadata), a Teachable Machine image export or a .tflite image classifier (float, uint8 or int8 ' +
        'quantized, with its labels file). Images get the same preprocessing as in training.\n' +
        'Folders are walked recursively; files that cannot be read are reported on stderr and the rest are still predicted.',
    )
    .argument('<model>', 'run folder, model folder, .onnx or .tflite file')
    .argument('<images...>', 'image files or folders')
    .option('--top <k>', 'how many classes to show per image', int('--top'), 5)
    .option('--threshold <p>', 'open-set threshold: an image whose best probability is under it is "unknown" (default: the one chosen on the validation split at training time, in the model\'s metadata; 0 turns it off)', probability('--threshold'))
    .option('--json', 'print one JSON object: { model, threshold, predictions: [{ path, top: [{ label, probability }], unknown }], failed }')
    .option('--csv', 'print CSV rows: path,rank,label,probability,unknown')
    .option('--tta', 'test-time augmentation: average the predictions of flipped and centre-cropped views')
    .option('--threads <n>', 'threads for the forward pass (default: all cores)', int('--threads'))
    .option('-q, --quiet', 'no progress on stderr'))
    .action(async (modelPath: string, images: string[], o: any) => {
      if (o.json && o.csv) throw new Error('choose one of --json and --csv');
      const log = createLogger({ quiet: o.quiet });
      const clf = await loadClassifier(modelPath, tfliteOptions(o));
      const r = await predictImages(clf, images, { top: o.top, threshold: o.threshold, threads: o.threads, tta: o.tta, logger: log });
      for (const f of r.failed) log.warn(`skipped ${f.path}: ${f.reason}`);
      if (o.json) {
        const out = { model: clf.source, labels: clf.metadata.labels.length, threshold: r.threshold, predictions: r.predictions.map((p) => ({ path: p.path, top: p.top, unknown: p.unknown })), failed: r.failed };
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      } else if (o.csv) {
        const lines = ['path,rank,label,probability,unknown'];
        for (const p of r.predictions) p.top.forEach((t, i) => lines.push([csvCell(p.path), String(i + 1), csvCell(t.label), t.probability.toPrecision(6), String(p.unknown)].join(',')));
        process.stdout.write(`${lines.join('\n')}\n`);
      } else {
        for (const p of r.predictions) {
          const note = p.unknown ? `  unknown: best ${(100 * p.top[0]!.probability).toFixed(2)}% is under the threshold ${(100 * r.threshold).toFixed(2)}%` : '';
          process.stdout.write(`${p.path}${note}\n`);
          for (const t of p.top) process.stdout.write(`  ${(100 * t.probability).toFixed(2).padStart(6)}%  ${t.label}\n`);
        }
      }
      if (!r.predictions.length) {
        process.exitCode = 1;
        log.warn('no image could be predicted');
      }
    });
}
