/**
 * End to end: cold and warm `tlearn train` on Caltech-97, one fine-tuning and one from-scratch epoch on a fixed
 * Caltech subset (the first epoch, which decodes, and the second, with the decoded-image cache warm), and
 * `tlearn compare`'s peak memory on a Caltech subset. The retired legacy decoder's rows stay in BENCHMARKS.md.
 */
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBackbone } from '../src/backbones/load.js';
import { composeClassifier } from '../src/classifier/compose.js';
import { augmentRgb, augmentRng, decodeAugmented, DEFAULT_AUGMENT } from '../src/image/augment.js';
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

/**
 * Seconds of one epoch (training + validation) on a Caltech subset: the first epoch (which decodes every image),
 * and the second (the decoded-image cache filled by the first, as in every epoch after the first).
 */
async function epochSeconds(label: string, model: () => Promise<LayersModelArtifacts>, train: LabelledImage[], val: LabelledImage[], o: Omit<NetworkTrainOptions, 'epochs'>, augmented: boolean): Promise<{ before: number; after: number; beforeCpu: number; afterCpu: number }> {
  const src = (l: LabelledImage[]) => ({ paths: l.map((i) => i.path), labels: l.map((i) => i.label) });
  const decodeOpts = { width: o.inputSize[1], height: o.inputSize[0], resize: o.resize };
  const aug = {
    trainDecode: augmented ? (e: number) => (p: string, i: number) => decodeAugmented(p, decodeOpts, DEFAULT_AUGMENT, augmentRng(1, e, i)) : undefined,
    trainAugment: augmented ? (e: number) => (img: Parameters<typeof augmentRgb>[0], i: number) => augmentRgb(img, decodeOpts, DEFAULT_AUGMENT, augmentRng(1, e, i)) : undefined,
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
  const both = await run(2);
  const r = { before: both.seconds[0]!, after: both.seconds[1]!, beforeCpu: both.cpu[0]!, afterCpu: both.cpu[1]! };
  log(`${label}: first epoch ${r.before.toFixed(1)} s, ${r.beforeCpu.toFixed(1)} CPU s; second ${r.after.toFixed(1)} s, ${r.afterCpu.toFixed(1)} CPU s`);
  return r;
}

export async function benchEpochs(images: LabelledImage[], quick: boolean): Promise<void> {
  const nTrain = quick ? 256 : 1024;
  const nVal = Math.round((nTrain * 931) / 4348);
  const train = images.slice(0, nTrain);
  const val = images.slice(nTrain, nTrain + nVal);
  const scale = FULL_EPOCH / (nTrain + nVal);
  const subset = `${nTrain} train + ${nVal} validation images, scaled to Caltech-97's 4,348 + 931`;
  const common = { classes: 97, inputSize: [224, 224] as [number, number], resize: 'squash' as const, seed: 1 };
  const scratch = await epochSeconds('scratch', async () => (await buildArchitecture('notebook-cnn', [224, 224], 97, 1)).artifacts, train, val, { ...common, preprocessing: 'unit', trainable: () => true, batchSize: 128, microBatch: 8 }, false);
  const backbone = await loadBackbone(MOBILENET);
  const tf = await getTf();
  const unfrozen = new Set(groupsToUnfreeze(backbone.artifacts.modelTopology, 8).flatMap((g) => g.layers));
  const finetune = await epochSeconds(
    'fine-tune',
    async () => composeClassifier(backbone.artifacts, await modelArtifacts(tf, buildHead(tf, headSpec(1280, 97), 'softmax'))),
    train,
    val,
    { ...common, preprocessing: 'tf', trainable: (w) => !/\/(gamma|beta|moving_mean|moving_variance)$/.test(w) && (w.startsWith('head_') || unfrozen.has(w.split('/')[0]!)), batchSize: 32, microBatch: 32, lr: 1e-4 },
    true,
  );
  const row = (what: string, r: { before: number; after: number; beforeCpu: number; afterCpu: number }) => [
    { what: `${what}: first epoch (decodes every image)`, value: `${(r.before * scale).toFixed(0)} s`, note: `${r.before.toFixed(1)} s (${r.beforeCpu.toFixed(1)} CPU s) measured on ${subset}` },
    { what: `${what}: one epoch after the first (decoded-image cache)`, value: `${(r.after * scale).toFixed(0)} s`, note: `${((100 * r.after) / r.before).toFixed(0)}% of the first epoch, ${((100 * r.afterCpu) / r.beforeCpu).toFixed(0)}% of its CPU time; ${r.after.toFixed(1)} s (${r.afterCpu.toFixed(1)} CPU s) measured on ${subset}` },
  ];
  rows.push(...row('scratch CNN (notebook, 1,233,473 params) at 224x224, batch 128, micro-batch 8', scratch), ...row('fine-tuning MobileNetV2-0.35 (top 8 blocks + head) at 224x224, batch 32, --augment', finetune));
  Object.assign(results, {
    scratchEpochSeconds: Number((scratch.after * scale).toFixed(1)),
    scratchFirstEpochSeconds: Number((scratch.before * scale).toFixed(1)),
    finetuneEpochSeconds: Number((finetune.after * scale).toFixed(1)),
    finetuneFirstEpochSeconds: Number((finetune.before * scale).toFixed(1)),
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
