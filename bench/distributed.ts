/**
 * npm run bench:distributed: throughput of `tlearn extract --queue` with 1, 2 and 4 `tlearn worker`
 * processes on loopback (one redis-server started here, stopped at the end), on a fixed subset of
 * Caltech-97 (every 10th image, 621 images) with MobileNetV2-0.35 from ../shared, against single-process
 * extraction of the same images. Every worker runs onnxruntime on 1 thread, so that N workers use N cores.
 * Each configuration is warmed up (backbone loaded, ONNX converted) before it is timed, and each timed run
 * is cut off after 300 s. Writes its table between the bench:distributed markers in BENCHMARKS.md.
 *
 *   npm run bench:distributed              621 images
 *   npm run bench:distributed -- --quick   156 images (a smoke test)
 */
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBackbone } from '../src/backbones/load.js';
import { loadImageFolder } from '../src/data/discover.js';
import { extractViaQueue } from '../src/distributed/coordinator.js';
import { connectRedis } from '../src/distributed/connection.js';
import { extractFeatures } from '../src/features/extract.js';
import { hasRedis, spawnWorker, startRedis } from '../test/redis.js';
import { CALTECH, EXCLUDE, MOBILENET, log, machine, writeBenchSection } from './report.js';

const quick = process.argv.includes('--quick');
const WORKERS = [1, 2, 4];
const CUTOFF_S = 300;
const load = () => os.loadavg()[0]!.toFixed(1);
const tmp = (p: string) => mkdtempSync(path.join(os.tmpdir(), p));

/** Seconds of CPU redis-server has used (INFO cpu). */
async function redisCpu(url: string): Promise<number> {
  const c = await connectRedis(url);
  const info = await c.info('cpu');
  c.disconnect();
  const get = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return get('used_cpu_user') + get('used_cpu_sys');
}

interface Row {
  what: string;
  value: string;
  note: string;
}

async function main(): Promise<void> {
  if (!existsSync(CALTECH) || !existsSync(MOBILENET)) {
    log(`npm run bench:distributed needs ${CALTECH} and ${MOBILENET} (../shared); nothing measured`);
    process.exitCode = 1;
    return;
  }
  if (!hasRedis('npm run bench:distributed')) {
    process.exitCode = 1;
    return;
  }
  process.env.TLEARN_HOME ??= tmp('tlearn-bench-dist-home-');
  const all = (await loadImageFolder(CALTECH, { exclude: EXCLUDE.split(',') })).images.map((i) => i.path);
  const step = quick ? 40 : 10;
  const subset = all.filter((_, i) => i % step === 0);
  const warm = all.filter((_, i) => i % step === step / 2);
  const rows: Row[] = [];
  const loads: string[] = [`start ${load()}`];

  // single process, for reference: all cores, then one onnxruntime thread
  const backbone = await loadBackbone(MOBILENET);
  for (const threads of [undefined, 1]) {
    await extractFeatures(warm.slice(0, 32), backbone, { cache: false, threads });
    const r = await extractFeatures(subset, backbone, { cache: false, threads });
    const rate = r.computed / r.seconds;
    log(`single process (${threads ?? 'all'} threads): ${rate.toFixed(0)} img/s`);
    rows.push({ what: `single process, ${threads ? '1 onnxruntime thread' : `all ${os.availableParallelism()} cores`} (\`tlearn extract\` without --queue)`, value: `${rate.toFixed(0)} img/s`, note: `${r.computed} images in ${r.seconds.toFixed(1)} s` });
  }

  const redis = await startRedis();
  let oneWorker = 0;
  try {
    for (const n of WORKERS) {
      const workers = Array.from({ length: n }, (_, k) => spawnWorker(redis.url, `w${k + 1}`, ['--lock-duration', '30000', '--stalled-interval', '30000']));
      try {
        await Promise.all(workers.map((w) => w.waitFor(/waiting for extractions/)));
        await extractViaQueue(warm.slice(0, 16 * n), { redis: redis.url, backbone: MOBILENET, featuresDir: tmp('tlearn-bench-store-') });
        loads.push(`${n} worker${n > 1 ? 's' : ''} ${load()}`);
        const signal = AbortSignal.timeout(CUTOFF_S * 1000);
        const [cpu0, rcpu0] = [process.cpuUsage(), await redisCpu(redis.url)];
        const featuresDir = tmp('tlearn-bench-store-');
        const r = await extractViaQueue(subset, { redis: redis.url, backbone: MOBILENET, featuresDir, signal });
        const cpu = process.cpuUsage(cpu0);
        const redisMs = ((await redisCpu(redis.url)) - rcpu0) * 1000 / r.images;
        // the same run again finds every vector in the store: its CPU is the coordinator's fixed cost
        // (backbone load, hashing index, store look-ups), which is subtracted to get the cost per vector received
        const cpu1 = process.cpuUsage();
        await extractViaQueue(subset, { redis: redis.url, backbone: MOBILENET, featuresDir });
        const fixed = process.cpuUsage(cpu1);
        const coordMs = (cpu.user + cpu.system - fixed.user - fixed.system) / 1000 / r.images;
        const rate = r.computed / r.queueSeconds;
        if (n === 1) oneWorker = rate;
        const split = Object.values(r.workers).sort((a, b) => b - a).join('/');
        log(`${n} workers: ${rate.toFixed(0)} img/s (${split})${r.interrupted ? ' CUT OFF' : ''}`);
        rows.push({
          what: `\`tlearn extract --queue\`, ${n} \`tlearn worker\` process${n > 1 ? 'es' : ''} (1 thread each), jobs of 32`,
          value: r.interrupted ? `cut off after ${CUTOFF_S} s` : `${rate.toFixed(0)} img/s`,
          note:
            `${n > 1 && oneWorker ? `${(rate / oneWorker).toFixed(2)}x one worker; ` : ''}images per worker ${split}; ${r.computed} images, queue to last vector stored ${r.queueSeconds.toFixed(1)} s (whole run ${r.seconds.toFixed(1)} s); ` +
            `coordinator ${coordMs.toFixed(2)} core-ms per vector received (beyond ${((fixed.user + fixed.system) / 1e6).toFixed(1)} core-s to start), redis-server ${redisMs.toFixed(3)} core-ms/img`,
        });
      } finally {
        await Promise.all(workers.map((w) => w.stop()));
      }
    }
  } finally {
    await redis.stop();
  }

  const table = ['| measurement | result | notes |', '|---|---|---|', ...rows.map((r) => `| ${r.what} | ${r.value} | ${r.note} |`)].join('\n');
  const section = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}, with \`npm run bench:distributed${quick ? ' -- --quick' : ''}\`: ${subset.length} Caltech-97 images (every ${step}th), MobileNetV2-0.35, redis-server and all workers on this machine (loopback). 1-minute load average during the runs: ${loads.join(', ')}.`,
    '',
    table,
  ].join('\n');
  process.stdout.write(`${table}\n`);
  await writeBenchSection('bench:distributed', section);
}

await main();
