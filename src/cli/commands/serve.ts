import { Command } from 'commander';
import { parseModelSpec } from '../../serve/models.js';
import { SERVE_DEFAULTS, startServer } from '../../serve/server.js';
import { createLogger } from '../../util/log.js';
import { int, list, positive } from '../options.js';
import { tfliteOptions, withTfliteOptions } from '../tflite-options.js';

export function serveCommand(): Command {
  const d = SERVE_DEFAULTS;
  return withTfliteOptions(new Command('serve')
    .summary('an HTTP API and a try-it web page for trained classifiers')
    .description(
      'Serve one or more classifiers (run folders, model folders, exported .onnx files, Teachable Machine exports or ' +
        '.tflite classifiers with their labels; --labels, --dequantize and --exact-weights apply to every .tflite model given), ' +
        'each under a name: its folder or file name, or name=path. Images are decoded and preprocessed exactly as in\n' +
        'training; concurrent requests are batched into one forward pass.\n\n' +
        '  GET  /                            the try-it page (drop, paste or choose images, or use the webcam)\n' +
        '  POST /v1/models/{name}/predict    the image as the raw body (image/jpeg, image/png, image/webp, image/gif,\n' +
        '                                    image/tiff, image/bmp) or multipart/form-data file fields;\n' +
        '                                    ?top=5&threshold=0.3 → {predictions: [{image, top: [{label, probability}], unknown, ms}]}\n' +
        '  POST /v1/predict                  the same, when one model is served\n' +
        '  POST /v1/models/{name}:predict    TensorFlow Serving: {"instances": [{"b64": "..."}]} → {"predictions": [...]}\n' +
        '  GET  /v1/models, /v1/models/{name}  model cards: labels, input size, preprocessing, backbone, test metrics, threshold\n' +
        '  GET  /v1/models/{name}/report.html  the run\'s report (read-only)\n' +
        '  GET  /healthz, /readyz, /metrics  liveness, readiness, Prometheus metrics\n\n' +
        'Errors answer JSON {error, detail} with 400, 401, 404, 405, 413, 415 or 422. Without --threshold a request uses\n' +
        'the model\'s own (chosen on the validation split at training time). SIGINT/SIGTERM stop accepting connections,\n' +
        'finish the requests in flight and exit 0.',
    )
    .argument('<models...>', 'run folder, model folder, .onnx or .tflite file, or Teachable Machine export; name=path to choose the name')
    .option('--host <host>', 'address to bind; anything but loopback needs --api-key (or --insecure-no-auth)', d.host)
    .option('--port <port>', 'port (0: any free port)', int('--port', 0), d.port)
    .option('--api-key <key>', 'require "Authorization: Bearer <key>" on the API and /metrics (default: env TLEARN_API_KEY)')
    .option('--insecure-no-auth', 'allow a non-loopback --host without an API key')
    .option('--cors <origins>', 'allow these origins (comma-separated) to call the API from their pages (default: CORS off)', list)
    .option('--max-body-mb <mb>', 'largest request body, in MB', positive('--max-body-mb'), d.bodyLimit / 1024 / 1024)
    .option('--max-pixels <n>', 'largest image, in pixels, read from its header before decoding', int('--max-pixels'), d.maxPixels)
    .option('--max-images <n>', 'most images per request', int('--max-images'), d.maxImages)
    .option('--timeout-ms <ms>', 'time to receive and answer one request', int('--timeout-ms'), d.timeoutMs)
    .option('--max-batch <n>', 'dynamic batching: most images in one forward pass', int('--max-batch'), d.maxBatch)
    .option('--max-wait-ms <ms>', 'dynamic batching: how long a batch waits for images other requests are still decoding (0: never waits); a lone request never waits', int('--max-wait-ms', 0), d.maxWaitMs)
    .option('--threads <n>', 'onnxruntime threads per model (default: all cores)', int('--threads'))
    .option('--int8 [images]', "serve int8 versions of the models: convolutions statically quantized (int8 weights per channel), calibrated on this many of the run's training images (default 300), the head float; faster on CPUs with integer kernels", int('--int8'))
    .option('--calibrate <folder>', "--int8: calibrate on the images in this folder instead of the run's training split (needed for models without a run folder)")
    .option('-q, --quiet', 'no messages on stderr (errors that stop the server are still printed)'))
    .action(async (paths: string[], o: any) => {
      const log = createLogger({ quiet: o.quiet });
      if (o.calibrate && !o.int8) throw new Error('--calibrate applies to --int8');
      const specs = paths.map(parseModelSpec);
      const apiKey: string | undefined = o.apiKey ?? (process.env.TLEARN_API_KEY || undefined);
      log.info(`loading ${specs.map((s) => `${s.name} (${s.path})`).join(', ')}`);
      const server = await startServer(specs, {
        host: o.host,
        port: o.port,
        apiKey,
        insecureNoAuth: o.insecureNoAuth,
        cors: o.cors,
        bodyLimit: Math.round(o.maxBodyMb * 1024 * 1024),
        maxPixels: o.maxPixels,
        maxImages: o.maxImages,
        timeoutMs: o.timeoutMs,
        maxBatch: o.maxBatch,
        maxWaitMs: o.maxWaitMs,
        threads: o.threads,
        classifier: tfliteOptions(o),
        int8: o.int8 ? { calibrate: o.calibrate, calibrationImages: typeof o.int8 === 'number' ? o.int8 : undefined } : undefined,
        logger: log,
      });
      const names = specs.map((s) => s.name);
      log.info(`tlearn serve: ${server.url}/ (page), ${server.url}/v1/models/{${names.join(',')}}/predict${apiKey ? ' (API key required)' : ''}; Ctrl-C stops`);
      // The address on stdout alone, for scripts (with --port 0 it is the only way to learn the port).
      process.stdout.write(`${server.url}\n`);
      await server.closed;
      log.info('stopped');
    });
}
