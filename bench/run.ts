/**
 * npm run bench: throughput of the frozen forward pass and of the whole pipeline, measured in one process
 * run so they can be compared as ratios, plus cold/warm end-to-end `tlearn train` on Caltech-97.
 * Writes the results between the bench markers in BENCHMARKS.md.
 *
 *   npm run bench              all sections
 *   npm run bench -- --quick   fewer images (for a smoke test)
 */
import { existsSync, promises as fs, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBackbone, type Backbone } from '../src/backbones/load.js';
import { preprocessInto } from '../src/backbones/preprocess.js';
import { zooStatus } from '../src/backbones/model-cache.js';
import { decodeImage } from '../src/data/decode.js';
import { loadImageFolder } from '../src/data/discover.js';
import { createRunner } from '../src/runtime/inference.js';
import { streamImages } from '../src/runtime/image-stream.js';
import { CALTECH, EXCLUDE, MOBILENET, ROOT, log, machine, timed, writeBenchSection } from './report.js';

const quick = process.argv.includes('--quick');

interface Row {
  what: string;
  value: string;
  note?: string;
}
const rows: Row[] = [];

async function timeRuns(seconds: number, fn: () => Promise<number>): Promise<number> {
  await fn();
  let n = 0;
  const t = performance.now();
  while (performance.now() - t < seconds * 1000) n += await fn();
  return n / ((performance.now() - t) / 1000);
}

async function benchBackbone(label: string, bb: Backbone, files: string[]): Promise<void> {
  const [h, w] = bb.inputSize;
  const B = 32;
  const runner = await createRunner(bb.artifacts, { inputSize: bb.inputSize, cacheKey: bb.id });
  const x = new Float32Array(B * h * w * 3);
  const rgb0 = await decodeImage(files[0]!, { width: w, height: h });
  for (let k = 0; k < B; k++) preprocessInto(rgb0, bb.preprocessing, x, k * h * w * 3);
  const raw = await timeRuns(quick ? 2 : 8, async () => (await runner.run(x, B), B));
  log(`${label}: raw onnxruntime ${raw.toFixed(0)} img/s`);
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const r = await streamImages(files, runner, { inputSize: bb.inputSize, preprocessing: bb.preprocessing, resize: bb.resize, batchSize: B });
  const pipeSeconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  const pipe = r.computed / pipeSeconds;
  log(`${label}: pipeline ${pipe.toFixed(0)} img/s over ${files.length} files`);
  await runner.close();
  const decode = await (async () => {
    const sub = files.slice(0, Math.min(files.length, 1500));
    let i = 0;
    const t = performance.now();
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (i < sub.length) await decodeImage(sub[i++]!, { width: w, height: h, resize: bb.resize });
    }));
    return sub.length / ((performance.now() - t) / 1000);
  })();
  process.env.TLEARN_RUNTIME = 'tfjs';
  const tfr = await createRunner(bb.artifacts, { inputSize: bb.inputSize });
  delete process.env.TLEARN_RUNTIME;
  const xb = x.subarray(0, 8 * h * w * 3);
  const tfjs = await timeRuns(quick ? 2 : 6, async () => (await tfr.run(xb, 8), 8));
  await tfr.close();
  log(`${label}: ${tfr.backend} ${tfjs.toFixed(1)} img/s`);
  rows.push(
    { what: `${label}: (a) raw onnxruntime, pre-decoded batch of ${B}`, value: `${raw.toFixed(0)} img/s`, note: `${((1000 / raw) * 1).toFixed(2)} ms/img` },
    { what: `${label}: (b) tlearn feature pipeline from JPEG files (${files.length} Caltech-97 images, no cache)`, value: `${pipe.toFixed(0)} img/s`, note: `${((100 * pipe) / raw).toFixed(0)}% of (a); CPU ${((cpu.user + cpu.system) / 1000 / files.length).toFixed(2)} core-ms/img` },
    { what: `${label}: (c) ${tfr.backend}, batch of 8`, value: `${tfjs.toFixed(1)} img/s`, note: `(a) is ${(raw / tfjs).toFixed(0)}x faster` },
    { what: `${label}: JPEG decode + resize alone (sharp, 8 in flight)`, value: `${decode.toFixed(0)} img/s`, note: `${(1000 / decode).toFixed(2)} ms/img wall on all cores` },
  );
}

async function benchTrain(): Promise<void> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'tlearn-bench-home-'));
  const out = mkdtempSync(path.join(os.tmpdir(), 'tlearn-bench-run-'));
  const args = [path.join(ROOT, 'bin/tlearn.js'), 'train', CALTECH, '--exclude', EXCLUDE, '--backbone', MOBILENET, '--epochs', '10', '--seed', '42', '--json', '-q'];
  const cold = await timed([...args, '--out', path.join(out, 'cold')], { TLEARN_HOME: home });
  const warm = await timed([...args, '--out', path.join(out, 'warm')], { TLEARN_HOME: home });
  const mc = JSON.parse(cold.stdout);
  const mw = JSON.parse(warm.stdout);
  log(`train cold ${cold.seconds.toFixed(1)} s, warm ${warm.seconds.toFixed(1)} s`);
  const stages = (m: any) =>
    Object.entries(m.timings as Record<string, number>)
      .map(([k, v]) => (k === 'features' && m.features.computed ? `features ${v.toFixed(1)} (forward passes ${m.features.forwardSeconds.toFixed(1)}, decoding and hashing overlapped)` : `${k} ${v.toFixed(1)}`))
      .join(', ');
  rows.push(
    { what: 'tlearn train Caltech-97, MobileNetV2-0.35, 10 epochs: cold (empty cache)', value: `${cold.seconds.toFixed(1)} s`, note: `peak RSS ${cold.rssMB?.toFixed(0) ?? '?'} MB; test accuracy ${mc.test.accuracy.toFixed(4)}; stages (s): ${stages(mc)}` },
    { what: 'same command again: warm (features from the cache)', value: `${warm.seconds.toFixed(1)} s`, note: `${((100 * warm.seconds) / cold.seconds).toFixed(0)}% of cold; peak RSS ${warm.rssMB?.toFixed(0) ?? '?'} MB; test accuracy ${mw.test.accuracy.toFixed(4)}; stages (s): ${stages(mw)}` },
  );
  await fs.rm(home, { recursive: true, force: true });
  await fs.rm(out, { recursive: true, force: true });
}

/** Training throughput of the onnxruntime engine on real Caltech images (decode included), a few batches. */
async function benchTraining(files: string[], labels: number[]): Promise<void> {
  const { buildArchitecture } = await import('../src/engine/architectures.js');
  const { OnnxTrainer } = await import('../src/engine/onnx-trainer.js');
  const { imageBatches } = await import('../src/engine/image-batches.js');
  const { composeClassifier } = await import('../src/classifier/compose.js');
  const { augmentRng, decodeAugmented, DEFAULT_AUGMENT } = await import('../src/data/augment.js');
  const { groupsToUnfreeze } = await import('../src/engine/layer-groups.js');
  const { modelArtifacts } = await import('../src/engine/architectures.js');
  const { buildHead, headSpec } = await import('../src/engine/head.js');
  const { getTf } = await import('../src/runtime/tfjs.js');
  const n = quick ? 256 : 1024;
  const src = { paths: files.slice(0, n), labels: labels.slice(0, n) };
  const order = src.paths.map((_, i) => i);
  const measure = async (label: string, trainer: import('../src/engine/onnx-trainer.js').OnnxTrainer, batch: number, preprocessing: 'unit' | 'tf', decode?: (p: string, i: number) => Promise<Uint8Array>) => {
    const t = performance.now();
    let seen = 0;
    for await (const b of imageBatches(src, order, { inputSize: [224, 224], preprocessing, resize: 'squash', batchSize: batch, decode })) {
      await trainer.trainBatch(b.x, b.labels);
      seen += b.labels.length;
    }
    const s = (performance.now() - t) / 1000;
    const perEpoch = (s / seen) * 4348;
    log(`${label}: ${(seen / s).toFixed(1)} img/s, ~${perEpoch.toFixed(0)} s per Caltech-97 epoch`);
    rows.push({ what: label, value: `${(seen / s).toFixed(1)} img/s`, note: `${seen} images incl. decoding; about ${perEpoch.toFixed(0)} s per epoch of 4,348 training images` });
  };
  const { artifacts } = await buildArchitecture('notebook-cnn', [224, 224], 97, 1);
  const scratch = await OnnxTrainer.create(artifacts, { trainable: () => true, microBatch: 8, optimizer: 'adam', seed: 1 });
  await measure('scratch CNN (notebook, 1,233,473 params) training at 224x224, batch 128, micro-batch 8', scratch, 128, 'unit');
  await scratch.close();
  const backbone = await loadBackbone(MOBILENET);
  const tf = await getTf();
  const head = buildHead(tf, headSpec(1280, 97), 'softmax');
  const model = composeClassifier(backbone.artifacts, await modelArtifacts(tf, head));
  const unfrozen = new Set(groupsToUnfreeze(backbone.artifacts.modelTopology, 8).flatMap((g) => g.layers));
  const ft = await OnnxTrainer.create(model, { trainable: (w) => !/\/(gamma|beta|moving_mean|moving_variance)$/.test(w) && (w.startsWith('head_') || unfrozen.has(w.split('/')[0]!)), microBatch: 32, optimizer: 'adam', lr: 1e-4, seed: 1 });
  await measure('fine-tuning MobileNetV2-0.35 (top 8 blocks + head, the default) at 224x224, batch 32, with --augment', ft, 32, 'tf', (p, i) => decodeAugmented(p, { width: 224, height: 224 }, DEFAULT_AUGMENT, augmentRng(1, 1, i)));
  await ft.close();
}

async function main(): Promise<void> {
  if (!existsSync(CALTECH) || !existsSync(MOBILENET)) {
    log(`npm run bench needs ${CALTECH} and ${MOBILENET} (../shared); nothing measured`);
    process.exitCode = 1;
    return;
  }
  process.env.TLEARN_HOME ??= mkdtempSync(path.join(os.tmpdir(), 'tlearn-bench-cache-'));
  const ds = await loadImageFolder(CALTECH, { exclude: EXCLUDE.split(',') });
  const files = ds.images.map((i) => i.path).filter((_, i) => !quick || i % 10 === 0);
  const shuffled = new (await import('../src/util/rng.js')).Rng(3).shuffle(ds.images.map((i) => i));
  await benchBackbone('MobileNetV2-0.35 (../shared)', await loadBackbone(MOBILENET), files);
  for (const s of await zooStatus()) {
    if (s.cached && s.entry.name !== 'mobilenet_v2_0.35') await benchBackbone(s.entry.name, await loadBackbone(s.entry.name), files.slice(0, 1500));
  }
  if (!quick) await benchTrain();
  await benchTraining(shuffled.map((i) => i.path), shuffled.map((i) => i.label));
  const date = new Date().toISOString().slice(0, 10);
  const table = ['| measurement | result | notes |', '|---|---|---|', ...rows.map((r) => `| ${r.what} | ${r.value} | ${r.note ?? ''} |`)].join('\n');
  process.stdout.write(`${table}\n`);
  await writeBenchSection('bench', [`Measured ${date} on ${machine()}, with \`npm run bench${quick ? ' -- --quick' : ''}\`.`, '', table].join('\n'));
}

await main();
