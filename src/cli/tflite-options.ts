/** The options of commands that load a classifier and may be given a .tflite file: its labels, and --dequantize. */
import type { Command } from 'commander';
import type { LoadClassifierOptions } from '../classifier/load.js';

export function withTfliteOptions(cmd: Command): Command {
  return cmd
    .option('--labels <file>', 'a .tflite classifier\'s labels, one a line (default: <name>.txt, <name>_labels.txt, labels.txt or the one *labels*.txt next to the model)')
    .option('--dequantize', 'a quantized .tflite model: run it dequantized to float instead of with integer kernels (slower; to compare)');
}

export function tfliteOptions(o: { labels?: string; dequantize?: boolean }): LoadClassifierOptions {
  return { ...(o.labels ? { labels: o.labels } : {}), ...(o.dequantize ? { form: 'float' as const } : {}) };
}
