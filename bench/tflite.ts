/**
 * npm run bench:tflite: the shared TFLite MobileNetV2-1.0 models as feature extractors on onnxruntime, the
 * integer graph (QLinear operators), the QDQ graph and the dequantized float graph, in one run (batches of 32
 * and single images, rounds interleaved). Writes its table between the bench-tflite markers in BENCHMARKS.md.
 *
 *   npm run bench:tflite                 both batch sizes, 7 rounds
 *   npm run bench:tflite -- --quick      batch 8, 3 rounds (a smoke test; not written to BENCHMARKS.md)
 */
import os from 'node:os';
import path from 'node:path';
import { listTfliteBackbones } from '../src/backbones/tflite/load.js';
import { log, machine, SHARED, writeBenchSection } from './report.js';
import { timeTfliteForms } from './tflite-lib.js';

const quick = process.argv.includes('--quick');
const dir = path.join(SHARED, 'models/tflite');

async function main(): Promise<void> {
  const models = (await listTfliteBackbones(dir)).filter((m) => !m.problem);
  if (!models.length) {
    log(`SKIPPED: no usable .tflite model in ${dir} (see ../shared/README.md)`);
    return;
  }
  const t0 = performance.now();
  const rows: string[] = [];
  for (const m of models) {
    for (const batch of quick ? [8] : [32, 1]) {
      log(`${m.name}, batch ${batch}...`);
      const t = await timeTfliteForms(m.file, { batch, rounds: quick ? 3 : batch === 1 ? 31 : 7 });
      const float = t.find((x) => x.form === 'float')!;
      for (const x of t) {
        const speedup = x.form === 'float' ? '' : `; **${(float.msPerImage / x.msPerImage).toFixed(2)}x** the float graph's speed (CPU ${(float.cpuMsPerImage / x.cpuMsPerImage).toFixed(2)}x)`;
        rows.push(`| ${m.name} | ${x.form} | ${batch} | ${x.msPerImage.toFixed(2)} ms | ${x.cpuMsPerImage.toFixed(2)} ms | ${(x.onnxBytes / 1e6).toFixed(1)} MB${speedup} |`);
        log(rows[rows.length - 1]!);
      }
    }
  }
  if (quick) return;
  const body = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}, with \`npm run bench:tflite\` (${((performance.now() - t0) / 1000).toFixed(0)} s; ${os.loadavg()[0]!.toFixed(1)} load average at the end).`,
    'Feature extraction (to the pooled 1280-d layer) of the shared TFLite models on onnxruntime, all cores; per image, median of interleaved rounds.',
    'qlinear: the integer graph as tlearn runs it by default (weights with a zero point requantized to symmetric int8 per output channel:',
    "exact in every channel whose values fit int8, a few channels rescaled); qlinear-exact: the file's weights exactly, zero points and all",
    "(--exact-weights); qdq: float operators between QuantizeLinear/DequantizeLinear, fused by onnxruntime; float: dequantized to float32",
    '(--dequantize). For the int8 per-channel model qlinear and qlinear-exact are the same graph.',
    '',
    '| model | form | batch | wall per image | CPU per image | ONNX size; speed-up |',
    '|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
  await writeBenchSection('bench-tflite', body);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
