import { Command } from 'commander';
import { startExtractionWorker } from '../../distributed/worker.js';
import { parsePathMap, type PathMap } from '../../distributed/sources.js';
import { createLogger } from '../../util/log.js';
import { int } from '../options.js';

const collectMap = (v: string, prev: PathMap[] = []): PathMap[] => [...prev, parsePathMap(v)];

export function workerCommand(): Command {
  return new Command('worker')
    .summary('compute feature vectors for `tlearn extract --queue` coordinators')
    .description(
      'Serve the feature extractions that `tlearn extract --queue` coordinators run through this Redis, on as many ' +
        'machines as you like. For each extraction the worker loads the same backbone (its zoo name from this ' +
        "machine's cache or the zoo's download location; a folder from the shared filesystem), checks that it gives " +
        "the coordinator's extractor key, then takes jobs: it reads each image by its path or http(s) URL, decodes " +
        'and runs it exactly as a local `tlearn train` would, and returns the vectors. Images that cannot be read or ' +
        'decoded come back as failures with the reason. A worker whose backbone differs (other weights, another ' +
        'model at that path) refuses a job with the reason, which the coordinator reports, and stops serving that ' +
        'extraction.\n\n' +
        'SIGTERM or Ctrl-C: finish the jobs in progress, then exit 0 (again: quit at once, their jobs go to other ' +
        'workers). A worker that dies holding a job loses its lock; another worker takes the job over after about ' +
        '--lock-duration, found by its stalled-job check every --stalled-interval.',
    )
    .requiredOption('--queue <redis-url>', "the coordinators' Redis: redis://[user:password@]host:port[/db] (rediss:// for TLS)")
    .option('--concurrency <n>', 'jobs processed at once by this process', int('--concurrency'), 1)
    .option('--threads <n>', 'onnxruntime threads per forward pass (default: all cores; with several workers on one machine, cores / workers)', int('--threads'))
    .option('--backbone <name|folder>', "use this backbone instead of the one each extraction names (e.g. the same model at another path here); its extractor key must still match or jobs are refused")
    .option('--path-map <from=to>', 'read coordinator paths under FROM at TO on this machine (a share mounted elsewhere); repeatable', collectMap)
    .option('--name <name>', 'worker name in logs and in the coordinator report (default host:pid)')
    .option('--lock-duration <ms>', 'job lock duration: how soon a dead worker\'s job can be taken over', int('--lock-duration', 500), 30_000)
    .option('--stalled-interval <ms>', 'how often to look for jobs whose worker died', int('--stalled-interval', 200), 30_000)
    .option('--poll <ms>', 'how often to look for new extractions', int('--poll', 100), 2000)
    .option('--fetch-timeout <s>', 'timeout per image URL, in seconds', int('--fetch-timeout'), 30)
    .option('-q, --quiet', 'no logs on stderr')
    .action(async (o: any) => {
      const log = createLogger({ quiet: o.quiet });
      const w = await startExtractionWorker({
        redis: o.queue,
        concurrency: o.concurrency,
        threads: o.threads,
        backbone: o.backbone,
        pathMaps: o.pathMap,
        name: o.name,
        lockDurationMs: o.lockDuration,
        stalledIntervalMs: o.stalledInterval,
        pollMs: o.poll,
        fetchTimeoutMs: o.fetchTimeout * 1000,
        logger: log,
      });
      await new Promise<void>((resolve) => {
        let closing = false;
        const onSignal = (sig: string) => {
          if (closing) {
            log.info(`${sig} again: quitting now; jobs in progress will be taken over by other workers`);
            process.exit(1);
          }
          closing = true;
          log.info(`${sig}: finishing the jobs in progress, then exiting (${sig} again to quit at once)`);
          void w.close().then(resolve, (e) => {
            log.warn(`closing: ${e?.message ?? e}`);
            resolve();
          });
        };
        process.on('SIGTERM', () => onSignal('SIGTERM'));
        process.on('SIGINT', () => onSignal('SIGINT'));
      });
      const s = w.stats;
      log.info(`worker ${w.name}: ${s.jobs} jobs, ${s.images} vectors, ${s.failedImages} images failed, ${s.refusedJobs} jobs refused`);
    });
}
