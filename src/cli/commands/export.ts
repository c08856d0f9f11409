import { Command, Option } from 'commander';
import { EXPORT_FORMATS, exportClassifier } from '../../export/export.js';
import { oneOf } from '../options.js';

export function exportCommand(): Command {
  return new Command('export')
    .summary('export a trained classifier as ONNX or a TF.js model')
    .description(
      'Export the whole classifier (backbone + head + softmax) of a run.\n\n' +
        '  onnx: one .onnx file (opset 17) that runs in onnxruntime from Python, C#, Java, C++, the browser (onnxruntime-web)\n' +
        '        and Node; input "input": NHWC float32 [batch, height, width, 3], preprocessed as metadata says;\n' +
        '        output "probabilities": [batch, classes]. Metadata goes to <name>.metadata.json and inside the file.\n' +
        '  tfjs: a TF.js layers model folder (model.json + weights.bin + metadata.json) for tf.loadLayersModel.\n\n' +
        '`tlearn predict` accepts both.',
    )
    .argument('<run>', 'run folder or model folder')
    .addOption(new Option('--format <format>', 'onnx or tfjs').argParser(oneOf('--format', EXPORT_FORMATS)).default('onnx'))
    .option('--out <path>', 'onnx: the .onnx file (default <run>/model.onnx); tfjs: the folder (default <run>/tfjs)')
    .action(async (run: string, o: any) => {
      const r = await exportClassifier(run, { format: o.format, out: o.out });
      process.stdout.write(`exported ${r.format}: ${r.files.join(', ')}\n`);
    });
}
