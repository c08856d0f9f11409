/** The options of commands that load a classifier and may be given a .tflite file: its labels, --dequantize and --exact-weights. */
import type { Command } from 'commander';
import type { LoadClassifierOptions } from '../classifier/load.js';

export function withTfliteOptions(cmd: Command): Command {
  return cmd
    .option('--labels <file>', 'a .tflite classifier\'s labels, one a line (default: <name>.txt, <name>_labels.txt, labels.txt or the one *labels*.txt next to the model)')
    .option('--dequantize', 'a quantized .tflite model: run it dequantized to float instead of with integer kernels (slower; to compare)')
    .option('--exact-weights', EXACT_WEIGHTS_HELP);
}

export function tfliteOptions(o: { labels?: string; dequantize?: boolean; exactWeights?: boolean }): LoadClassifierOptions {
  return { ...(o.labels ? { labels: o.labels } : {}), ...(o.dequantize ? { form: 'float' as const } : {}), ...(o.exactWeights ? { exactWeights: true } : {}) };
}

export const EXACT_WEIGHTS_HELP =
  'a uint8 (TF1-style) .tflite model: keep its weights exactly as the file has them, zero points and all; by default ' +
  'they are requantized to symmetric int8 per output channel, exact in every channel whose values fit int8 (all but ' +
  'a few), which runs about 1.5-1.9x faster on onnxruntime';
