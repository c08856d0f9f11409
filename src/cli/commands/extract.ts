import { Command, Option } from 'commander';
import { PREPROCESS_MODES } from '../../backbones/preprocess.js';
import { DEFAULT_BACKBONE } from '../../backbones/zoo.js';
import { RESIZE_MODES } from '../../image/decode.js';
import { extractViaQueue, type QueueExtractResult } from '../../distributed/coordinator.js';
import { isUrl, listExtractInputs, readSource } from '../../distributed/sources.js';
import { openSpecExtractor, resolveSpec } from '../../distributed/spec.js';
import { featuresRoot } from '../../features/cache.js';
import { expandExclude, resolveDataArg } from '../../datasets/resolve.js';
import { createLogger, type Logger } from '../../util/log.js';
import { int, list, oneOf } from '../options.js';

function summary(r: QueueExtractResult): string[] {
  const by = Object.entries(r.workers)
    .sort((a, b) => b[1] - a[1])
    .map(([w, k]) => `${w} ${k}`);
  const lines = [
    `${r.images} images: ${r.computed} computed${by.length ? ` by ${by.length} worker${by.length > 1 ? 's' : ''} (${by.join(', ')})` : ''}, ${r.fromStore} already in the store, ${r.failed.length} failed`,
    `stored ${r.stored} new vectors${r.duplicates ? ` (${r.duplicates} images had the content of another)` : ''}, extractor key ${r.key}, in ${r.seconds.toFixed(1)} s`,
  ];
  if (r.failed.length) lines.push('failed:', ...r.failed.map((f) => `  ${f.path}: ${f.reason}`));
  return lines;
}

async function extractHere(sources: string[], o: any, log: Logger): Promise<void> {
  const spec = await resolveSpec({ backbone: o.backbone, preprocessing: o.preprocess, cutAt: o.cutAt, resize: o.resize });
  let int8;
  if (o.int8) {
    const local = sources.filter((s) => !isUrl(s));
    if (!local.length) throw new Error('--int8 calibrates on local image files; this list has only URLs');
    int8 = { calibration: local, calibrationImages: typeof o.int8 === 'number' ? o.int8 : undefined };
  }
  const fx = await openSpecExtractor(spec, { cache: true, threads: o.threads, logger: log, int8 });
  try {
    const t0 = performance.now();
    // the content-hash index (no re-reading of known files) is used unless URLs need another reader
    const set = await fx.extract(sources, 'features', sources.some(isUrl) ? { read: (s) => readSource(s) } : {});
    const out = { images: sources.length, computed: set.computed, fromStore: set.fromCache, failed: set.failed, key: fx.key, dim: fx.dim, seconds: (performance.now() - t0) / 1000 };
    const text = [`${out.images} images: ${out.computed} computed here (${fx.runtime}), ${out.fromStore} already in the store, ${out.failed.length} failed`, `extractor key ${fx.key}, in ${out.seconds.toFixed(1)} s`];
    if (set.failed.length) text.push('failed:', ...set.failed.map((f) => `  ${f.path}: ${f.reason}`));
    if (o.json) {
      log.info(text.join('\n'));
      process.stdout.write(`${JSON.stringify(out)}\n`);
    } else process.stdout.write(`${text.join('\n')}\n`);
    if (sources.length && set.failed.length === sources.length) process.exitCode = 1;
  } finally {
    await fx.close();
  }
}

export function extractCommand(): Command {
  return new Command('extract')
    .summary('compute feature vectors into the store, here or on many workers (--queue)')
    .description(
      'Compute the backbone feature vector of every image into the features store ($TLEARN_HOME/features), so that a ' +
        'later `tlearn train` on the same images with the same backbone runs from the store.\n\n' +
        'DATA is a dataset folder (the images `tlearn train` would use; --exclude applies), a folder of images, or a ' +
        'list file: one image path (relative to the list file) or http(s) URL per line, # starts a comment.\n\n' +
        'With --queue redis://host:port this process is the coordinator: images already in the store are skipped, ' +
        'the rest go to a BullMQ queue named after the extractor key in jobs of --job-size images, `tlearn worker` ' +
        'processes (on any machines that see the same image paths) compute them, and every returned vector is ' +
        'written to the store here as it arrives. Redis is yours: tlearn starts none. The run ends when every image ' +
        'is stored or reported as failed with its reason; Ctrl-C stops it and keeps what was stored.\n\n' +
        'Exit status: 0 when every image was stored or failed on its own (unreadable, not an image); 1 when a job ' +
        'failed as a whole (e.g. a worker refused it: wrong backbone) or nothing could be extracted.',
    )
    .argument('<data>', 'dataset folder or name (tlearn datasets list), folder of images, or list file of paths and URLs')
    .option('--exclude <classes>', 'comma-separated class folders to leave out (dataset folders)', list)
    .option('--backbone <name|folder>', 'zoo name (see `tlearn models list`) or a TF.js layers model folder; workers load the same', DEFAULT_BACKBONE)
    .addOption(new Option('--preprocess <mode>', "override the backbone's pixel preprocessing (tf, caffe, torch, unit, raw)").argParser(oneOf('--preprocess', PREPROCESS_MODES)))
    .addOption(new Option('--resize <mode>', 'squash (Keras load_img) or center-crop').argParser(oneOf('--resize', RESIZE_MODES)))
    .option('--cut-at <layer>', 'for a local backbone: take features from this layer (global average pooled)')
    .option('--int8 [images]', 'use an int8 version of the backbone (static quantization calibrated on this many of the images, spread evenly, default 300); its vectors are stored under their own key (`tlearn train --int8` calibrates on its training split, so it computes its own); not with --queue', int('--int8'))
    .option('--queue <redis-url>', 'spread the work over `tlearn worker` processes through this Redis (redis://[user:password@]host:port[/db], rediss:// for TLS)')
    .option('--job-size <n>', 'images per job (--queue)', int('--job-size'), 32)
    .option('--in-flight <jobs>', 'jobs on the queue at once, waiting or in progress (--queue); bounds Redis memory', int('--in-flight'), 256)
    .option('--attempts <n>', 'tries per job when a worker errors out (--queue); a job whose worker died is handed to another worker in any case', int('--attempts'), 3)
    .option('--threads <n>', 'threads for the forward pass without --queue (default: all cores)', int('--threads'))
    .option('--json', 'print the outcome as one JSON object on stdout (logs stay on stderr)')
    .option('-q, --quiet', 'no progress or logs on stderr')
    .action(async (data: string, o: any) => {
      const log = createLogger({ quiet: o.quiet });
      const d = await resolveDataArg(data, { logger: log });
      const inputs = await listExtractInputs(d.folder, { exclude: expandExclude(o.exclude, d) });
      for (const w of inputs.warnings) log.warn(w);
      for (const s of inputs.skipped) log.info(`  skipped ${s.path}: ${s.reason}`);
      log.info(`${data}: ${inputs.kind}, ${inputs.sources.length} images${inputs.skipped.length ? `, ${inputs.skipped.length} other files skipped` : ''}; features store ${featuresRoot()}`);
      if (!inputs.sources.length) throw new Error(`no images to extract in ${data}`);
      if (!o.queue) return extractHere(inputs.sources, o, log);
      if (o.int8) throw new Error('--int8 is not available with --queue: workers load the float backbone (extract here, or train with --int8)');

      const abort = new AbortController();
      const onSignal = () => {
        if (abort.signal.aborted) process.exit(130);
        log.info('stopping: withdrawing the queued jobs (Ctrl-C again to quit at once)');
        abort.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const r = await extractViaQueue(inputs.sources, {
          redis: o.queue,
          backbone: o.backbone,
          preprocessing: o.preprocess,
          resize: o.resize,
          cutAt: o.cutAt,
          jobSize: o.jobSize,
          inFlight: o.inFlight,
          attempts: o.attempts,
          logger: log,
          signal: abort.signal,
        });
        const text = summary(r);
        if (o.json) {
          log.info(text.join('\n'));
          const { sources: _s, hashes: _h, ...rest } = r;
          process.stdout.write(`${JSON.stringify(rest)}\n`);
        } else process.stdout.write(`${text.join('\n')}\n`);
        if (r.interrupted) process.exitCode = 130;
        else if (r.jobFailures.length || (r.images > 0 && r.failed.length === r.images)) process.exitCode = 1;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
