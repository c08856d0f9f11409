/**
 * End to end: cold and warm `tlearn train` on Caltech-97; fine-tuning and from-scratch epochs on a fixed Caltech
 * subset (the first epoch, which decodes, and the second, with the decoded-image cache warm), plain and with
 * --augment interleaved in one run (with the batch pool, on the main thread, and with twice the pool); and
 * `tlearn compare`'s peak memory on a Caltech subset.
 */
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { backboneLayers, loadBackbone } from '../src/backbones/load.js';
import { composeClassifier } from '../src/classifier/compose.js';
import { augmentFunction, decodeAugmentedFunction, DEFAULT_AUGMENT } from '../src/image/augment.js';
import { batchPool, batchWorkerNice, batchWorkers } from '../src/engine/batch-pool.js';
import type { LabelledImage } from '../src/data/discover.js';
import { buildArchitecture, modelArtifacts } from '../src/engine/architectures.js';
import { buildHead, headSpec } from '../src/engine/head.js';
import { groupsToUnfreeze } from '../src/engine/layer-groups.js';
import { trainNetwork, type NetworkTrainOptions } from '../src/engine/network.js';
import type { LayersModelArtifacts } from '../src/backbones/layers-model.js';
import { getTf } from '../src/runtime/tfjs.js';
import type { TrainingEvent } from '../src/engine/events.js';
import { CALTECH, EXCLUDE, log, MOBILENET, results, rows, timed, TLEARN } from './common.js';

export async function benchTrain(): Promise<void> {
  const out = mkdtempSync(path.join(os.tmpdir(), 'tlearn-bench-run-'));
  const args = [TLEARN, 'train', CALTECH, '--exclude', EXCLUDE, '--backbone', MOBILENET, '--epochs', '10', '--seed', '42', '--json', '-q'];
  const homes: string[] = [];
  const home = () => {
    homes.push(mkdtempSync(path.join(os.tmpdir(), 'tlearn-bench-home-')));
    return homes.at(-1)!;
  };
  const fastHome = home();
  const cold = await timed([...args, '--out', path.join(out, 'cold')], { TLEARN_HOME: fastHome });
  const warm = await timed([...args, '--out', path.join(out, 'warm')], { TLEARN_HOME: fastHome });
  const [mc, mw] = [cold, warm].map((r) => JSON.parse(r.stdout));
  log(`train cold ${cold.seconds.toFixed(1)} s, warm ${warm.seconds.toFixed(1)} s`);
  const stages = (m: any) =>
    Object.entries(m.timings as Record<string, number>)
      .map(([k, v]) => (k === 'features' && m.features.computed ? `features ${v.toFixed(1)} (forward passes ${m.features.forwardSeconds.toFixed(1)}, decoding and hashing overlapped)` : `${k} ${v.toFixed(1)}`))
      .join(', ');
  const acc = (m: any) => m.test.accuracy.toFixed(4);
  rows.push(
    { what: 'tlearn train Caltech-97, MobileNetV2-0.35, 10 epochs: cold (empty cache)', value: `${cold.seconds.toFixed(1)} s`, note: `${cold.cpuSeconds ? `${cold.cpuSeconds.toFixed(0)} CPU s; ` : ''}peak RSS ${cold.rssMB?.toFixed(0) ?? '?'} MB; test accuracy ${acc(mc)}; stages (s): ${stages(mc)}` },
    { what: 'same command again: warm (features from the store)', value: `${warm.seconds.toFixed(1)} s`, note: `${((100 * warm.seconds) / cold.seconds).toFixed(0)}% of cold; peak RSS ${warm.rssMB?.toFixed(0) ?? '?'} MB; test accuracy ${acc(mw)}; stages (s): ${stages(mw)}` },
  );
  Object.assign(results, {
    coldTrainSeconds: Number(cold.seconds.toFixed(1)),
    warmTrainSeconds: Number(warm.seconds.toFixed(1)),
    coldTrainTestAccuracy: Number(acc(mc)),
  });
  for (const d of [...homes, out]) await fs.rm(d, { recursive: true, force: true });
}

const FULL_EPOCH = 4348 + 931; // Caltech-97 train + validation images with the default 0.7/0.15/0.15 split

interface EpochTimes {
  before: number;
  after: number;
  beforeCpu: number;
  afterCpu: number;
  /** 1-minute load average when the run started (other processes on the machine). */
  load: number;
}

/**
 * Seconds of one epoch (training + validation) on a Caltech subset: the first epoch (which decodes every image),
 * and the second (the decoded-image cache filled by the first, as in every epoch after the first). `env`:
 * TLEARN_BATCH_WORKERS / TLEARN_BATCH_NICE for the run (none: the default pool).
 */
async function epochSeconds(label: string, model: () => Promise<LayersModelArtifacts>, train: LabelledImage[], val: LabelledImage[], o: Omit<NetworkTrainOptions, 'epochs'>, augmented: boolean, env: Variant = {}): Promise<EpochTimes> {
  const src = (l: LabelledImage[]) => ({ paths: l.map((i) => i.path), labels: l.map((i) => i.label) });
  const decodeOpts = { width: o.inputSize[1], height: o.inputSize[0], resize: o.resize };
  const aug = {
    trainDecode: augmented ? (e: number) => decodeAugmentedFunction(decodeOpts, DEFAULT_AUGMENT, 1, e) : undefined,
    trainAugment: augmented ? (e: number) => augmentFunction(decodeOpts, DEFAULT_AUGMENT, 1, e) : undefined,
  };
  /** Seconds and CPU seconds (all threads of this process) of each epoch, read at the trainer's 'epoch' events. */
  const run = async (epochs: number) => {
    const cpu: number[] = [];
    let last = process.cpuUsage();
    const onEvent = (e: TrainingEvent) => {
      if (e.type !== 'epoch') return;
      const c = process.cpuUsage(last);
      cpu.push((c.user + c.system) / 1e6);
      last = process.cpuUsage();
    };
    const m = await model();
    last = process.cpuUsage();
    const net = await trainNetwork(m, src(train), src(val), { ...o, ...aug, epochs, onEvent });
    await net.close();
    return { seconds: net.epochSeconds, cpu };
  };
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  const load = os.loadavg()[0]!;
  const pool = batchPool();
  const [items, byCaller] = [pool?.items ?? 0, pool?.madeByCaller ?? 0];
  try {
    const both = await run(2);
    const made = pool ? pool.items - items : 0;
    const caller = made ? `; the main thread made ${pool!.madeByCaller - byCaller} of the pool's ${made} images` : '';
    const r = { before: both.seconds[0]!, after: both.seconds[1]!, beforeCpu: both.cpu[0]!, afterCpu: both.cpu[1]!, load };
    log(`${label}: first epoch ${r.before.toFixed(1)} s, ${r.beforeCpu.toFixed(1)} CPU s; second ${r.after.toFixed(1)} s, ${r.afterCpu.toFixed(1)} CPU s; load average ${load.toFixed(1)} at the start${caller}`);
    return r;
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** The batch pool's settings for one run. */
interface Variant {
  TLEARN_BATCH_WORKERS?: string;
  TLEARN_BATCH_NICE?: string;
}

/** How a run's pool differs from the default, for its log line. */
const variant = (env?: Variant) => (env && Object.keys(env).length ? ` (${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')})` : '');

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Plain and augmented epochs of one mode, interleaved so that a change in the machine's load hits both alike:
 * plain, augmented, augmented with every input made on the main thread (TLEARN_BATCH_WORKERS=0, as before the
 * batch pool), augmented with twice the pool, augmented with the workers at the main thread's priority
 * (TLEARN_BATCH_NICE=0), augmented, plain. The plain and augmented numbers are the means of their two runs.
 */
async function modeEpochs(label: string, run: (augmented: boolean, env?: Variant) => Promise<EpochTimes>, otherWorkers: number): Promise<ModeEpochs> {
  const p1 = await run(false);
  const a1 = await run(true);
  const mainThread = await run(true, { TLEARN_BATCH_WORKERS: '0' });
  const other = await run(true, { TLEARN_BATCH_WORKERS: String(otherWorkers) });
  const samePriority = await run(true, { TLEARN_BATCH_NICE: '0' });
  const a2 = await run(true);
  const p2 = await run(false);
  log(`${label}: augmented / plain epoch after the first = ${(mean([a1.after, a2.after]) / mean([p1.after, p2.after])).toFixed(3)}`);
  return { plain: [p1, p2], aug: [a1, a2], mainThread, other, samePriority };
}

interface ModeEpochs {
  plain: EpochTimes[];
  aug: EpochTimes[];
  mainThread: EpochTimes;
  other: EpochTimes;
  samePriority: EpochTimes;
}

/** A training the epochs benchmark times: a fresh model for each run, and the trainer's options. */
export interface EpochSetup {
  model: () => Promise<LayersModelArtifacts>;
  opts: Omit<NetworkTrainOptions, 'epochs'>;
}

/**
 * The two trainings whose epochs are timed (here and in bench/profile-epoch.ts): the notebook's CNN from scratch
 * at 224x224 (batch 128, micro-batch 8), and fine-tuning MobileNetV2-0.35's top 8 blocks + a new 97-way head
 * (batch 32, lr 1e-4, BatchNormalization frozen).
 */
export async function epochSetups(): Promise<{ scratch: EpochSetup; finetune: EpochSetup }> {
  const common = { classes: 97, inputSize: [224, 224] as [number, number], resize: 'squash' as const, seed: 1 };
  const backbone = await loadBackbone(MOBILENET);
  const tf = await getTf();
  const unfrozen = new Set(groupsToUnfreeze(backboneLayers(backbone, 'the training benchmark').modelTopology, 8).flatMap((g) => g.layers));
  return {
    scratch: {
      model: async () => (await buildArchitecture('notebook-cnn', [224, 224], 97, 1)).artifacts,
      opts: { ...common, preprocessing: 'unit', trainable: () => true, batchSize: 128, microBatch: 8 },
    },
    finetune: {
      model: async () => composeClassifier(backboneLayers(backbone, 'the training benchmark'), await modelArtifacts(tf, buildHead(tf, headSpec(1280, 97), 'softmax'))),
      opts: { ...common, preprocessing: 'tf', trainable: (w: string) => !/\/(gamma|beta|moving_mean|moving_variance)$/.test(w) && (w.startsWith('head_') || unfrozen.has(w.split('/')[0]!)), batchSize: 32, microBatch: 32, lr: 1e-4 },
    },
  };
}

/** `images`: training images of the measured subset (default 1,024; 256 with --quick). */
export async function benchEpochs(images: LabelledImage[], quick: boolean, nImages?: number): Promise<void> {
  const nTrain = nImages ?? (quick ? 256 : 1024);
  const nVal = Math.round((nTrain * 931) / 4348);
  const train = images.slice(0, nTrain);
  const val = images.slice(nTrain, nTrain + nVal);
  const scale = FULL_EPOCH / (nTrain + nVal);
  const subset = `${nTrain} train + ${nVal} validation images, scaled to Caltech-97's 4,348 + 931`;
  const setups = await epochSetups();
  const workers = batchWorkers();
  // the pool size beside the default that is measured once: twice the default (on 2 cores, 2 workers against 1)
  const other = Math.max(2, 2 * workers);
  const scratch = await modeEpochs('scratch', (augmented, env) => epochSeconds(`scratch${augmented ? ` --augment${variant(env)}` : ''}`, setups.scratch.model, train, val, setups.scratch.opts, augmented, env), other);
  const finetune = await modeEpochs('fine-tune', (augmented, env) => epochSeconds(`fine-tune${augmented ? ` --augment${variant(env)}` : ''}`, setups.finetune.model, train, val, setups.finetune.opts, augmented, env), other);
  const pool = `batch pool of ${workers} worker thread${workers === 1 ? '' : 's'} at nice ${batchWorkerNice()}`;
  const fmt = (t: EpochTimes[], what: 'after' | 'before') => t.map((r) => `${r[what].toFixed(1)} s (${r[what === 'after' ? 'afterCpu' : 'beforeCpu'].toFixed(1)} CPU s, load ${r.load.toFixed(1)})`).join(' and ');
  const rowsOf = (what: string, r: ModeEpochs) => {
    const plain = mean(r.plain.map((t) => t.after));
    const aug = mean(r.aug.map((t) => t.after));
    return [
      { what: `${what}: first epoch (decodes every image), no augmentation`, value: `${(mean(r.plain.map((t) => t.before)) * scale).toFixed(0)} s`, note: `${fmt(r.plain, 'before')} measured on ${subset}` },
      { what: `${what}: one epoch after the first (decoded-image cache), no augmentation`, value: `${(plain * scale).toFixed(0)} s`, note: `${fmt(r.plain, 'after')} measured on ${subset}` },
      { what: `${what}: one epoch after the first, --augment, ${pool}`, value: `${(aug * scale).toFixed(0)} s`, note: `**${(aug / plain).toFixed(2)}x the plain epoch** (goal ≤ 1.15x); ${fmt(r.aug, 'after')}, interleaved with the plain runs; first epoch ${(mean(r.aug.map((t) => t.before)) * scale).toFixed(0)} s` },
      { what: `${what}: one epoch after the first, --augment, every input made on the main thread (TLEARN_BATCH_WORKERS=0)`, value: `${(r.mainThread.after * scale).toFixed(0)} s`, note: `${(r.mainThread.after / plain).toFixed(2)}x the plain epoch; ${fmt([r.mainThread], 'after')}, run between the two augmented runs above` },
      { what: `${what}: one epoch after the first, --augment, batch pool of ${other} worker threads (TLEARN_BATCH_WORKERS=${other})`, value: `${(r.other.after * scale).toFixed(0)} s`, note: `${(r.other.after / plain).toFixed(2)}x the plain epoch; ${fmt([r.other], 'after')}, run between the two augmented runs above` },
      { what: `${what}: one epoch after the first, --augment, the pool's workers at the main thread's priority (TLEARN_BATCH_NICE=0)`, value: `${(r.samePriority.after * scale).toFixed(0)} s`, note: `${(r.samePriority.after / plain).toFixed(2)}x the plain epoch; ${fmt([r.samePriority], 'after')}, run between the two augmented runs above` },
    ];
  };
  rows.push(...rowsOf('scratch CNN (notebook, 1,233,473 params) at 224x224, batch 128, micro-batch 8', scratch), ...rowsOf('fine-tuning MobileNetV2-0.35 (top 8 blocks + head) at 224x224, batch 32', finetune));
  const sec = (t: EpochTimes[], what: 'after' | 'before' = 'after') => Number((mean(t.map((r) => r[what])) * scale).toFixed(1));
  Object.assign(results, {
    scratchEpochSeconds: sec(scratch.plain),
    scratchAugmentEpochSeconds: sec(scratch.aug),
    finetunePlainEpochSeconds: sec(finetune.plain),
    finetuneEpochSeconds: sec(finetune.aug),
    scratchAugmentRatio: Number((mean(scratch.aug.map((t) => t.after)) / mean(scratch.plain.map((t) => t.after))).toFixed(3)),
    finetuneAugmentRatio: Number((mean(finetune.aug.map((t) => t.after)) / mean(finetune.plain.map((t) => t.after))).toFixed(3)),
    scratchAugmentMainThreadEpochSeconds: sec([scratch.mainThread]),
    finetuneAugmentMainThreadEpochSeconds: sec([finetune.mainThread]),
    scratchAugmentOtherWorkersEpochSeconds: sec([scratch.other]),
    finetuneAugmentOtherWorkersEpochSeconds: sec([finetune.other]),
    scratchAugmentSamePriorityEpochSeconds: sec([scratch.samePriority]),
    finetuneAugmentSamePriorityEpochSeconds: sec([finetune.samePriority]),
    batchWorkerNice: batchWorkerNice(),
    otherBatchWorkers: other,
    scratchFirstEpochSeconds: sec(scratch.plain, 'before'),
    finetuneFirstEpochSeconds: sec(finetune.aug, 'before'),
    batchWorkers: workers,
    epochsScaledFrom: `${nTrain}+${nVal} images`,
    epochsLoadAverage: [...scratch.plain, ...scratch.aug, scratch.mainThread, scratch.other, scratch.samePriority, ...finetune.plain, ...finetune.aug, finetune.mainThread, finetune.other, finetune.samePriority].map((t) => t.load.toFixed(1)).join(' '),
  });
}

/** Peak RSS of `tlearn compare` (scratch CNN then transfer) on a copy of up to `perClass` images per Caltech-97 class. */
export async function benchCompareRss(images: LabelledImage[], classes: string[], perClass: number, epochs: number): Promise<void> {
  const data = mkdtempSync(path.join(os.tmpdir(), 'tlearn-bench-compare-data-'));
  const home = mkdtempSync(path.join(os.tmpdir(), 'tlearn-bench-home-'));
  const out = mkdtempSync(path.join(os.tmpdir(), 'tlearn-bench-compare-'));
  const taken = new Map<number, number>();
  let n = 0;
  for (const img of images) {
    const k = taken.get(img.label) ?? 0;
    if (k >= perClass) continue;
    taken.set(img.label, k + 1);
    await fs.mkdir(path.join(data, classes[img.label]!), { recursive: true });
    await fs.copyFile(img.path, path.join(data, classes[img.label]!, path.basename(img.path)));
    n++;
  }
  const r = await timed([TLEARN, 'compare', data, '--backbone', MOBILENET, '--epochs', String(epochs), '--out', out, '--json', '-q'], { TLEARN_HOME: home });
  log(`compare: peak RSS ${r.rssMB?.toFixed(0)} MB in ${r.seconds.toFixed(0)} s`);
  rows.push({ what: `tlearn compare (scratch CNN, then transfer), ${epochs} epoch${epochs > 1 ? 's' : ''}, ${n} Caltech-97 images (${perClass} per class)`, value: `peak RSS ${r.rssMB?.toFixed(0) ?? '?'} MB`, note: `${r.seconds.toFixed(0)} s; goal: under 1 GB (memory is set by batch sizes and the training graphs, not by the number of images or epochs)` });
  results.comparePeakRssMB = r.rssMB === null ? null : Math.round(r.rssMB);
  for (const d of [data, home, out]) await fs.rm(d, { recursive: true, force: true });
}
