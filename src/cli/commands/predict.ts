import { Command } from 'commander';
import { loadClassifier } from '../../classifier/load.js';
import { predictImages } from '../../classifier/predict.js';
import { createLogger } from '../../util/log.js';
import { int } from '../options.js';

function csvCell(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function predictCommand(): Command {
  return new Command('predict')
    .summary('class probabilities for images')
    .description(
      'Predict the class of images with a trained classifier: a run folder, its model/ folder, an exported .onnx file\n' +
        '(with its metadata) or a Teachable Machine image export. Images get the same preprocessing as in training.\n' +
        'Folders are walked recursively; files that cannot be read are reported on stderr and the rest are still predicted.',
    )
    .argument('<model>', 'run folder, model folder or .onnx file')
    .argument('<images...>', 'image files or folders')
    .option('--top <k>', 'how many classes to show per image', int('--top'), 5)
    .option('--json', 'print one JSON object: { model, predictions: [{ path, top: [{ label, probability }] }], failed }')
    .option('--csv', 'print CSV rows: path,rank,label,probability')
    .option('--tta', 'test-time augmentation: average the predictions of flipped and centre-cropped views')
    .option('--threads <n>', 'threads for the forward pass (default: all cores)', int('--threads'))
    .option('-q, --quiet', 'no progress on stderr')
    .action(async (modelPath: string, images: string[], o: any) => {
      if (o.json && o.csv) throw new Error('choose one of --json and --csv');
      const log = createLogger({ quiet: o.quiet });
      const clf = await loadClassifier(modelPath);
      const r = await predictImages(clf, images, { top: o.top, threads: o.threads, tta: o.tta, logger: log });
      for (const f of r.failed) log.warn(`skipped ${f.path}: ${f.reason}`);
      if (o.json) {
        const out = { model: clf.source, labels: clf.metadata.labels.length, predictions: r.predictions.map((p) => ({ path: p.path, top: p.top })), failed: r.failed };
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      } else if (o.csv) {
        const lines = ['path,rank,label,probability'];
        for (const p of r.predictions) p.top.forEach((t, i) => lines.push([csvCell(p.path), String(i + 1), csvCell(t.label), t.probability.toPrecision(6)].join(',')));
        process.stdout.write(`${lines.join('\n')}\n`);
      } else {
        for (const p of r.predictions) {
          process.stdout.write(`${p.path}\n`);
          for (const t of p.top) process.stdout.write(`  ${(100 * t.probability).toFixed(2).padStart(6)}%  ${t.label}\n`);
        }
      }
      if (!r.predictions.length) {
        process.exitCode = 1;
        log.warn('no image could be predicted');
      }
    });
}
