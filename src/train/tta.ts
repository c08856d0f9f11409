/** Test-time augmentation for a trained model's final test metrics: flips and centre crops, averaged. */
import { TTA_VARIANTS } from '../image/augment.js';
import type { DatasetSplit } from '../data/split.js';
import { createRunner } from '../runtime/inference.js';
import { streamImages } from '../runtime/image-stream.js';
import type { Logger } from '../util/log.js';
import type { ModelOutcome, TrainRunOptions } from './types.js';

export async function withTta(o: ModelOutcome, split: DatasetSplit, opts: TrainRunOptions, log: Logger): Promise<ModelOutcome> {
  const t = performance.now();
  const runner = await createRunner(o.model, { inputSize: o.inputSize, threads: opts.threads, logger: log });
  const paths = split.test.map((i) => i.path);
  const progress = log.progress(`test with TTA (${TTA_VARIANTS.length} views)`, paths.length);
  try {
    const r = await streamImages(paths, runner, { inputSize: o.inputSize, preprocessing: o.preprocessing, resize: o.resize, kernel: o.kernel, variants: TTA_VARIANTS, progress, signal: opts.signal });
    progress.done();
    const K = runner.outputDim;
    const keep = paths.map((_, i) => i).filter((i) => r.ok[i]);
    const probs = new Float32Array(keep.length * K);
    keep.forEach((i, k) => probs.set(r.outputs.subarray(i * K, (i + 1) * K), k * K));
    return {
      ...o,
      test: { probs, labels: Int32Array.from(keep, (i) => split.test[i]!.label), paths: keep.map((i) => paths[i]!) },
      describe: [...o.describe, ['test-time augmentation', `${TTA_VARIANTS.length} views averaged (flip, centre crop 87.5%)`]],
      details: { ...o.details, tta: { variants: TTA_VARIANTS } },
      timings: { ...o.timings, tta: (performance.now() - t) / 1000 },
    };
  } finally {
    await runner.close();
  }
}
