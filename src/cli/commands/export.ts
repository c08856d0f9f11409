import path from 'node:path';
import { Command, Option } from 'commander';
import { EXPORT_FORMATS, exportClassifier } from '../../export/export.js';
import { int, oneOf } from '../options.js';
import { tfliteOptions, withTfliteOptions } from '../tflite-options.js';

export function exportCommand(): Command {
  return withTfliteOptions(new Command('export')
    .summary('export a trained classifier as ONNX, a TF.js model or a web page that classifies in the browser')
    .description(
      'Export the whole classifier (backbone + head + softmax) of a run.\n\n' +
        '  onnx: one .onnx file (opset 17) that runs in onnxruntime from Python, C#, Java, C++, the browser (onnxruntime-web)\n' +
        '        and Node; input "input": NHWC float32 [batch, height, width, 3], preprocessed as metadata says;\n' +
        '        output "probabilities": [batch, classes]. Metadata goes to <name>.metadata.json and inside the file.\n' +
        '  tfjs: a TF.js layers model folder (model.json + weights.bin + metadata.json) for tf.loadLayersModel.\n' +
        '  web:  a static folder that classifies in the browser with no server (onnxruntime-web, WebAssembly): index.html\n' +
        '        (the try-it page of tlearn serve), classifier.js (load(url), classify(image | canvas | Blob, { top })),\n' +
        '        model.onnx + metadata.json and onnxruntime-web\'s wasm files. Serve it with any static file server;\n' +
        '        its README.md shows how to embed it in a page. Images are resized on a canvas as in training.\n\n' +
        '`tlearn predict` and `tlearn serve` accept the onnx and tfjs exports (and the web folder\'s model.onnx).\n' +
        'A .tflite classifier (with its labels) and a run trained on a .tflite backbone export as onnx only; for a\n' +
        'quantized model the ONNX file keeps the integer operators (--dequantize: float32 instead).',
    )
    .argument('<run>', 'run folder, model folder or .tflite classifier')
    .addOption(new Option('--format <format>', 'onnx, tfjs or web').argParser(oneOf('--format', EXPORT_FORMATS)).default('onnx'))
    .option('--int8 [images]', 'onnx: quantize the convolutions to int8 (QuantizeLinear/DequantizeLinear pairs that onnxruntime runs as integer QLinearConv; int8 weights per channel, uint8 activations), calibrated on this many of the run\'s training images (default 300); the head stays float', int('--int8'))
    .option('--calibrate <folder>', '--int8: calibrate on the images in this folder instead of the run\'s training split')
    .option('--out <path>', 'onnx: the .onnx file (default <run>/model.onnx, <name>.onnx beside a .tflite file); tfjs, web: the folder (default <run>/tfjs, <run>/web)'))
    .action(async (run: string, o: any) => {
      if (o.calibrate && !o.int8) throw new Error('--calibrate applies to --int8');
      const int8 = o.int8 ? { calibrate: o.calibrate, calibrationImages: typeof o.int8 === 'number' ? o.int8 : undefined } : undefined;
      const r = await exportClassifier(run, { format: o.format, out: o.out, int8, classifier: tfliteOptions(o) });
      if (r.format === 'web') {
        const dir = path.dirname(r.files[0]!);
        process.stdout.write(`exported web: ${dir} (${r.files.length} files, ${(r.bytes / 1e6).toFixed(1)} MB)\nopen it through any static file server, e.g. \`npx http-server ${dir}\`, then /index.html; ${path.join(dir, 'README.md')} shows how to embed it\n`);
      } else process.stdout.write(`exported ${r.format}: ${r.files.join(', ')}\n`);
    });
}
