/**
 * npm run bench:serve: `tlearn serve` under load, against the offline pipeline in the same run.
 *
 * A MobileNetV2-0.35 classifier (../shared backbone + a 97-class softmax head; the head's weights do not change
 * the cost) is served by `tlearn serve` in its own process on 127.0.0.1; autocannon sends Caltech-97 JPEGs as
 * single-image requests: 200 one at a time (a lone request's latency), then 2,000 over 32 connections. Every
 * run is bounded in requests and in time. The offline pipeline (`predictImages`: read, decode, preprocess,
 * batches of 32 through onnxruntime) classifies the same images in this process for comparison.
 * Writes the results between the bench-serve markers in BENCHMARKS.md.
 *
 *   npm run bench:serve                      defaults (--max-batch 32, --max-wait-ms 0)
 *   npm run bench:serve -- --sweep           also the batching settings around the defaults (longer)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { writeLayersModel } from '../src/backbones/layers-model.js';
import { backboneLayers, loadBackbone } from '../src/backbones/load.js';
import { composeClassifier } from '../src/classifier/compose.js';
import { loadClassifier } from '../src/classifier/load.js';
import { makeMetadata } from '../src/classifier/metadata.js';
import { predictImages } from '../src/classifier/predict.js';
import { loadImageFolder } from '../src/data/discover.js';
import { modelArtifacts } from '../src/engine/architectures.js';
import { buildHead, headSpec } from '../src/engine/head.js';
import { getTf } from '../src/runtime/tfjs.js';
import { Rng } from '../src/util/rng.js';
import { CALTECH, EXCLUDE, MOBILENET, ROOT, log, machine, writeBenchSection } from './report.js';
import { DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_MS } from '../src/serve/batcher.js';

const sweep = process.argv.includes('--sweep');
const LOAD_REQUESTS = 2000;
const CONNECTIONS = 32;
const LONE_REQUESTS = 200;
/** Longest any one autocannon run may take before it is stopped. */
const RUN_LIMIT_S = 300;

async function buildModel(dir: string): Promise<string> {
  const backbone = await loadBackbone(MOBILENET);
  const tf = await getTf();
  const head = buildHead(tf, headSpec(1280, 97), 'softmax');
  const model = composeClassifier(backboneLayers(backbone, 'the serve benchmark'), await modelArtifacts(tf, head));
  await writeLayersModel(dir, model);
  const labels = Array.from({ length: 97 }, (_, i) => `class_${i}`);
  const meta = makeMetadata({ labels, inputSize: backbone.inputSize, preprocessing: backbone.preprocessing, resize: backbone.resize, kernel: 'linear', backbone: { name: backbone.name, source: backbone.source, id: backbone.id, params: backbone.params, note: backbone.note } });
  await fs.writeFile(path.join(dir, 'metadata.json'), JSON.stringify(meta, null, 2));
  return dir;
}

interface Server {
  url: string;
  child: ChildProcess;
}

async function startServe(model: string, args: string[]): Promise<Server> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/tlearn.js'), 'serve', `bench=${model}`, '--port', '0', '-q', ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /^(http:\/\/127\.0\.0\.1:\d+)$/m.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`tlearn serve exited with ${code}`)));
  });
  return { url, child };
}

/** The server's forward passes so far (from /metrics) and its process's CPU seconds (from /proc, Linux). */
async function serverSide(s: Server): Promise<{ images: number; batches: number; cpuSeconds: number }> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  const sum = (name: string) => [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);
  let cpuSeconds = NaN;
  try {
    const stat = (await fs.readFile(`/proc/${s.child.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
    cpuSeconds = (Number(stat[11]) + Number(stat[12])) / 100; // utime + stime, in clock ticks of 1/100 s
  } catch {
    // not Linux: the column says NaN
  }
  return { images: sum('tlearn_batch_size_sum'), batches: sum('tlearn_batch_size_count'), cpuSeconds };
}

async function stopServe(s: Server): Promise<void> {
  const exited = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  await exited;
}

interface LoadResult {
  requests: number;
  errors: number;
  non2xx: number;
  p50: number;
  p99: number;
  imagesPerSecond: number;
  seconds: number;
}

/** `amount` single-image requests over `connections`, cycling through `bodies`; stopped after RUN_LIMIT_S. */
async function load(url: string, bodies: Buffer[], amount: number, connections: number): Promise<LoadResult> {
  let next = 0;
  const instance = autocannon({
    url: `${url}/v1/predict`,
    connections,
    amount,
    timeout: 30,
    requests: [{ method: 'POST', headers: { 'content-type': 'image/jpeg' }, setupRequest: (req: any) => ({ ...req, body: bodies[next++ % bodies.length] }) }],
  });
  const stop = setTimeout(() => (instance as any).stop(), RUN_LIMIT_S * 1000);
  const r = await instance;
  clearTimeout(stop);
  const ok = r.requests.total - r.non2xx;
  return { requests: r.requests.total, errors: r.errors + r.timeouts, non2xx: r.non2xx, p50: r.latency.p50, p99: r.latency.p99, imagesPerSecond: ok / r.duration, seconds: r.duration };
}

async function main(): Promise<void> {
  if (!existsSync(CALTECH) || !existsSync(MOBILENET)) {
    log(`npm run bench:serve needs ${CALTECH} and ${MOBILENET} (../shared); nothing measured`);
    process.exitCode = 1;
    return;
  }
  process.env.TLEARN_HOME ??= mkdtempSync(path.join(os.tmpdir(), 'tlearn-bench-cache-'));
  const model = await buildModel(mkdtempSync(path.join(os.tmpdir(), 'tlearn-bench-model-')));
  const ds = await loadImageFolder(CALTECH, { exclude: EXCLUDE.split(',') });
  const files = new Rng(7).shuffle(ds.images.map((i) => i.path)).slice(0, LOAD_REQUESTS);
  const bodies = await Promise.all(files.map((f) => fs.readFile(f)));
  log(`${files.length} Caltech-97 JPEGs, ${(bodies.reduce((a, b) => a + b.length, 0) / 1e6).toFixed(1)} MB`);

  // The offline pipeline on the same images, in this process, before the server starts.
  const clf = await loadClassifier(model);
  await predictImages(clf, files.slice(0, 64)); // warm-up: converts the model to ONNX once, loads onnxruntime
  const t0 = performance.now();
  const offline = await predictImages(clf, files);
  const offlineSeconds = (performance.now() - t0) / 1000;
  const offlineRate = offline.predictions.length / offlineSeconds;
  log(`offline pipeline: ${offline.predictions.length} images in ${offlineSeconds.toFixed(1)} s = ${offlineRate.toFixed(0)} img/s`);

  const rows: string[][] = [];
  const settings: Array<{ label: string; args: string[] }> = [{ label: `defaults (max batch ${DEFAULT_MAX_BATCH}, max wait ${DEFAULT_MAX_WAIT_MS} ms)`, args: [] }];
  if (sweep)
    settings.push(
      { label: 'max wait 0 ms (never wait)', args: ['--max-wait-ms', '0'] },
      { label: 'max wait 5 ms', args: ['--max-wait-ms', '5'] },
      { label: 'max batch 16', args: ['--max-batch', '16'] },
      { label: 'max batch 64', args: ['--max-batch', '64'] },
      // the first server of a run is measured on a colder machine: the defaults once more show how much that weighs
      { label: 'defaults again, last (order check)', args: [] },
    );
  let main: { lone: LoadResult; loaded: LoadResult } | undefined;
  for (const s of settings) {
    const server = await startServe(model, s.args);
    try {
      // warm-up under load: onnxruntime sizes its buffers for the batch sizes it meets, and the JIT settles (the first
      // setting of a run measured 166 img/s after a 50-request warm-up at 4 connections, the same setting last 199)
      await load(server.url, bodies, 400, CONNECTIONS);
      const lone = await load(server.url, bodies, LONE_REQUESTS, 1);
      log(`${s.label}: lone requests p50 ${lone.p50} ms, p99 ${lone.p99} ms (${lone.errors} errors, ${lone.non2xx} non-2xx)`);
      const before = await serverSide(server);
      const loaded = await load(server.url, bodies, LOAD_REQUESTS, CONNECTIONS);
      const after = await serverSide(server);
      const images = after.images - before.images;
      const meanBatch = images / Math.max(1, after.batches - before.batches);
      const serverCoreMs = (1000 * (after.cpuSeconds - before.cpuSeconds)) / Math.max(1, images);
      log(`${s.label}: ${loaded.requests} requests over ${CONNECTIONS} connections: p50 ${loaded.p50} ms, p99 ${loaded.p99} ms, ${loaded.imagesPerSecond.toFixed(0)} img/s (${loaded.errors} errors, ${loaded.non2xx} non-2xx)`);
      main ??= { lone, loaded };
      rows.push([
        s.label,
        `${lone.p50} / ${lone.p99} ms`,
        `${loaded.p50} / ${loaded.p99} ms`,
        `${loaded.imagesPerSecond.toFixed(0)} img/s (mean batch ${meanBatch.toFixed(1)}; server ${serverCoreMs.toFixed(1)} core-ms/img)`,
        `${((100 * loaded.imagesPerSecond) / offlineRate).toFixed(0)}%`,
        `${loaded.errors + lone.errors} errors, ${loaded.non2xx + lone.non2xx} non-2xx of ${loaded.requests + lone.requests}`,
      ]);
    } finally {
      await stopServe(server);
    }
  }
  const date = new Date().toISOString().slice(0, 10);
  const table = [
    '| serve settings | lone request p50 / p99 | under load p50 / p99 | under load (images per forward pass; server CPU) | vs offline | errors |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
  const section = [
    `Measured ${date} on ${machine()}, with \`npm run bench:serve${sweep ? ' -- --sweep' : ''}\`.`,
    '',
    `MobileNetV2-0.35 (224x224) + a 97-class head, \`tlearn serve\` on 127.0.0.1, autocannon in the benchmark's process on the same cores: ` +
      `${LONE_REQUESTS} single-image requests one at a time (lone), then ${LOAD_REQUESTS} over ${CONNECTIONS} connections, each a Caltech-97 JPEG as the raw body. ` +
      `Offline pipeline on the same ${files.length} JPEGs (\`predictImages\`, batches of 32): **${offlineRate.toFixed(0)} img/s**.`,
    '',
    table,
  ].join('\n');
  process.stdout.write(`${section}\n`);
  await writeBenchSection('bench-serve', section);
  if (main && (main.loaded.errors || main.loaded.non2xx || main.lone.errors || main.lone.non2xx)) process.exitCode = 1;
}

await main();
