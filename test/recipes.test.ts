/**
 * The network trainer's recipe options on small generated data: mixup and CutMix, weight averaging (EMA, SWA),
 * the warm-up schedule, mixed targets in the training step, and whole runs with BatchNormalization training,
 * re-estimation and the small ResNet from scratch.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeWeights, readLayersModel, type LayersModelArtifacts } from '../src/backbones/layers-model.js';
import { WeightEma, WeightSwa } from '../src/engine/averaging.js';
import { mixBatch, sampleBeta } from '../src/engine/mixing.js';
import { scheduleScale, trainNetwork, type NetworkTrainOptions } from '../src/engine/network.js';
import { OnnxTrainer } from '../src/engine/onnx-trainer.js';
import { TrainingRecipe } from '../src/engine/recipe.js';
import { getTf } from '../src/runtime/tfjs.js';
import { trainFromFolder } from '../src/train/run.js';
import { Rng } from '../src/util/rng.js';
import { makeDataset, makeTinyBackbone, runCli, saveArtifacts, tmpDir } from './helpers.js';

describe('mixup and CutMix', () => {
  it('Beta samples have the right mean and variance', () => {
    const rng = new Rng(1);
    for (const [a, b] of [
      [0.2, 0.2],
      [1, 1],
      [2, 5],
    ]) {
      const xs = Array.from({ length: 20000 }, () => sampleBeta(a!, b!, rng));
      const mean = xs.reduce((p, x) => p + x, 0) / xs.length;
      const variance = xs.reduce((p, x) => p + (x - mean) ** 2, 0) / xs.length;
      expect(xs.every((x) => x >= 0 && x <= 1)).toBe(true);
      expect(mean).toBeCloseTo(a! / (a! + b!), 1);
      expect(variance).toBeCloseTo((a! * b!) / ((a! + b!) ** 2 * (a! + b! + 1)), 2);
    }
  });

  const H = 6;
  const W = 5;
  const px = H * W * 3;
  const batch = () => {
    const x = new Float32Array(4 * px);
    for (let i = 0; i < 4; i++) x.fill(i + 1, i * px, (i + 1) * px);
    return { x, labels: Int32Array.from([0, 1, 2, 3]) };
  };

  it('mixup blends each image with another of the batch by lam; the targets say which', () => {
    const { x, labels } = batch();
    const copy = new Float32Array(x);
    const m = mixBatch(x, labels, [H, W], { mixup: 0.4 }, new Rng(3));
    expect(m.kind).toBe('mixup');
    expect(Array.from(x)).toEqual(Array.from(copy));
    const lam = m.mixed.lam[0]!;
    expect(lam).toBeGreaterThan(0);
    expect(lam).toBeLessThan(1);
    for (let i = 0; i < 4; i++) {
      const other = m.mixed.labelsB[i]!;
      // image i is filled with i + 1, and its label is i
      expect(m.x[i * px + 7]).toBeCloseTo(lam * (i + 1) + (1 - lam) * (other + 1), 5);
    }
    expect([...m.mixed.labelsB].sort()).toEqual([0, 1, 2, 3]);
    // seeded: the same generator state gives the same mix
    expect(Array.from(mixBatch(x, labels, [H, W], { mixup: 0.4 }, new Rng(3)).x)).toEqual(Array.from(m.x));
  });

  it('CutMix pastes a box of the other image; lam is the share of the image left', () => {
    const { x, labels } = batch();
    let m = mixBatch(x, labels, [H, W], { cutmix: 1 }, new Rng(5));
    for (let seed = 6; !m.box || m.box[1] - m.box[0] === 0 || m.box[3] - m.box[2] === 0; seed++) m = mixBatch(x, labels, [H, W], { cutmix: 1 }, new Rng(seed));
    expect(m.kind).toBe('cutmix');
    const [y0, y1, x0, x1] = m.box!;
    const inside = (y: number, c: number) => y >= y0 && y < y1 && c >= x0 && c < x1;
    for (let i = 0; i < 4; i++) {
      for (let y = 0; y < H; y++)
        for (let c = 0; c < W; c++) expect(m.x[i * px + (y * W + c) * 3]).toBe(inside(y, c) ? m.mixed.labelsB[i]! + 1 : i + 1);
      expect(m.mixed.lam[i]).toBeCloseTo(1 - ((y1 - y0) * (x1 - x0)) / (H * W), 6);
    }
  });

  it('with both, batches use one or the other', () => {
    const { x, labels } = batch();
    const rng = new Rng(9);
    const kinds = new Set(Array.from({ length: 40 }, () => mixBatch(x, labels, [H, W], { mixup: 0.2, cutmix: 1 }, rng).kind));
    expect([...kinds].sort()).toEqual(['cutmix', 'mixup']);
  });
});

describe('weight averaging and schedules', () => {
  it('EMA follows avg = d * avg + (1 - d) * w with the warm-up decay min(d, (1 + t) / (10 + t)); state round-trips', () => {
    const w = [Float32Array.from([1, 2]), Float32Array.from([3])];
    const ema = WeightEma.start(0.5, w);
    const expected = [1, 2, 3];
    for (let t = 0; t < 4; t++) {
      const d = Math.min(0.5, (1 + t) / (10 + t));
      const next = [10 + t, 20 + t, 30 + t];
      w[0]!.set(next.slice(0, 2));
      w[1]!.set(next.slice(2));
      ema.update(w);
      next.forEach((v, i) => (expected[i] = d * expected[i]! + (1 - d) * v));
    }
    expect([...ema.weights[0]!, ...ema.weights[1]!].map((v) => Number(v.toFixed(4)))).toEqual(expected.map((v) => Number(v.toFixed(4))));
    const again = WeightEma.fromState(ema.state());
    expect(again.currentDecay).toBe(ema.currentDecay);
    expect(() => WeightEma.start(1, w)).toThrow(/decay must be in \(0, 1\)/);
  });

  it('SWA is the plain mean of the added weights', () => {
    const swa = WeightSwa.empty();
    expect(() => swa.average()).toThrow(/no weights/);
    swa.add([Float32Array.from([1, 4])]);
    swa.add([Float32Array.from([3, 8])]);
    expect(Array.from(swa.average()[0]!)).toEqual([2, 6]);
    expect(Array.from(WeightSwa.fromState(swa.state()).average()[0]!)).toEqual([2, 6]);
  });

  it('the recipe state (mixing generator, averages) saves and restores', () => {
    const w = [Float32Array.from([1, 2, 3])];
    const a = TrainingRecipe.start({ mixup: 0.2, ema: 0.9 }, 5, 1, w);
    const x = Float32Array.from({ length: 3 * 2 * 2 * 3 }, (_, i) => i);
    a.prepare(x, Int32Array.from([0, 1, 2]), [2, 2]);
    a.afterStep([Float32Array.from([4, 5, 6])]);
    const b = TrainingRecipe.fromState({ mixup: 0.2, ema: 0.9 }, 5, a.state());
    expect(Array.from(b.prepare(x, Int32Array.from([0, 1, 2]), [2, 2]).x)).toEqual(Array.from(a.prepare(x, Int32Array.from([0, 1, 2]), [2, 2]).x));
    expect(Array.from(b.evalWeights()![0]!)).toEqual(Array.from(a.evalWeights()![0]!));
    expect(() => TrainingRecipe.start({ ema: 0.9, swa: 2 }, 5, 1, w)).toThrow(/--ema and --swa .* choose one/);
    expect(() => TrainingRecipe.start({ swa: 6 }, 5, 1, w)).toThrow(/--swa must be a number of final epochs in 1..5/);
    expect(() => TrainingRecipe.start({ mixup: -1 }, 5, 1, w)).toThrow(/--mixup must be an alpha >= 0/);
  });

  it('warm-up rises linearly, then the schedule runs over the remaining steps', () => {
    expect([0, 1, 2, 3].map((s) => scheduleScale('cosine', s, 14, 4))).toEqual([0.25, 0.5, 0.75, 1]);
    expect(scheduleScale('cosine', 4, 14, 4)).toBe(1);
    expect(scheduleScale('cosine', 13, 14, 4)).toBeCloseTo(0, 10);
    expect(scheduleScale('constant', 9, 14, 4)).toBe(1);
    // without warm-up, unchanged
    expect(scheduleScale('cosine', 0, 10)).toBe(1);
    expect(scheduleScale('one-cycle', 0, 10)).toBeCloseTo(0.1, 10);
  });
});

let tf: typeof TF;
let tiny: LayersModelArtifacts;
let data: string;
const paths: string[] = [];
const labels: number[] = [];

beforeAll(async () => {
  tf = await getTf();
  // conv → BatchNormalization → relu → GAP → dense softmax on 16x16 images
  const m = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [16, 16, 3], filters: 6, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }), name: 'c1' }),
      tf.layers.batchNormalization({ name: 'bn1', momentum: 0.9 }),
      tf.layers.activation({ activation: 'relu', name: 'r1' }),
      tf.layers.globalAveragePooling2d({ name: 'gap' }),
      tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }), name: 'out' }),
    ],
  });
  tiny = await saveArtifacts(tf, m);
  m.dispose();
  data = await makeDataset(tmpDir(), { classes: { red: 14, green: 14, blue: 14 }, seed: 7, size: 24 });
  for (const [c, name] of ['red', 'green', 'blue'].entries()) {
    for (const f of (await fs.readdir(path.join(data, name))).sort()) {
      paths.push(path.join(data, name, f));
      labels.push(c);
    }
  }
});

describe('mixed targets in the training step', () => {
  it('the loss is lam * CE(own label) + (1 - lam) * CE(other label), from the same forward pass', async () => {
    const trainer = await OnnxTrainer.create(tiny, { trainable: (w) => !w.startsWith('bn'), microBatch: 4, optimizer: 'sgd', lr: 1e-9, seed: 1, threads: 1 });
    const rng = new Rng(2);
    const x = Float32Array.from({ length: 3 * 16 * 16 * 3 }, () => rng.next() * 2 - 1);
    const y = Int32Array.from([0, 1, 2]);
    const mixed = { labelsB: Int32Array.from([2, 0, 1]), lam: Float32Array.from([0.7, 0.7, 0.7]) };
    const p = await trainer.predict(x, 3);
    let expected = 0;
    for (let i = 0; i < 3; i++) expected -= 0.7 * Math.log(p[i * 3 + y[i]!]!) + 0.3 * Math.log(p[i * 3 + mixed.labelsB[i]!]!);
    const r = await trainer.trainBatch(x, y, 1, mixed);
    expect(r.lossSum).toBeCloseTo(expected, 4);
    const plain = await trainer.trainBatch(x, y, 1);
    let own = 0;
    for (let i = 0; i < 3; i++) own -= Math.log(p[i * 3 + y[i]!]!);
    expect(plain.lossSum).toBeCloseTo(own, 4);
    await trainer.close();
  });
});

describe('trainNetwork with recipe options', () => {
  const base = (): NetworkTrainOptions => ({ classes: 3, inputSize: [16, 16], preprocessing: 'tf', resize: 'squash', trainable: () => true, epochs: 4, batchSize: 8, microBatch: 8, lr: 0.02, seed: 5, threads: 1 });
  const src = () => ({ paths, labels });

  it('BatchNormalization trains; mixup + CutMix, warm-up and cosine learn the task; the same seed gives the same run', async () => {
    const o = { ...base(), mixup: 0.2, cutmix: 1, warmupEpochs: 1, schedule: 'cosine' as const, epochs: 6 };
    const a = await trainNetwork(tiny, src(), src(), o);
    expect(a.recipe.bnTrained).toEqual(['bn1']);
    expect(a.options).toMatchObject({ mixup: 0.2, cutmix: 1, warmupEpochs: 1, schedule: 'cosine' });
    expect(a.history[0]!.lr).toBeCloseTo(0.02, 10);
    expect(a.history.at(-1)!.lr).toBeLessThan(0.002);
    expect(Math.max(...a.history.map((h) => h.val_acc))).toBeGreaterThan(0.8);
    const w0 = decodeWeights(tiny);
    const w1 = decodeWeights(a.artifacts);
    expect(Array.from(w1.get('bn1/moving_mean')!.data)).not.toEqual(Array.from(w0.get('bn1/moving_mean')!.data));
    expect(Array.from(w1.get('bn1/gamma')!.data)).not.toEqual(Array.from(w0.get('bn1/gamma')!.data));
    const b = await trainNetwork(tiny, src(), src(), o);
    expect(b.history.map((h) => h.loss)).toEqual(a.history.map((h) => h.loss));
    await a.close();
    await b.close();
  });

  it('EMA leaves the training trajectory alone and validates the average; SWA averages the last epochs and is kept only if it validates better', async () => {
    const plain = await trainNetwork(tiny, src(), src(), base());
    const ema = await trainNetwork(tiny, src(), src(), { ...base(), ema: 0.9 });
    expect(ema.history.map((h) => h.loss)).toEqual(plain.history.map((h) => h.loss));
    expect(ema.history.map((h) => h.val_loss)).not.toEqual(plain.history.map((h) => h.val_loss));
    expect(ema.options.ema).toBe(0.9);
    const finalAcc = async (n: Awaited<ReturnType<typeof trainNetwork>>) => {
      const r = await n.predict(src());
      let hits = 0;
      r.indices.forEach((idx, k) => {
        const row = Array.from(r.probs.subarray(k * 3, k * 3 + 3));
        if (row.indexOf(Math.max(...row)) === labels[idx]) hits++;
      });
      return hits / r.indices.length;
    };
    // by val_loss the averaged weights lose to the best epoch here: that epoch's weights are kept
    const swa = await trainNetwork(tiny, src(), src(), { ...base(), swa: 2 });
    expect(swa.recipe.swa).toMatchObject({ epochs: 2, kept: false });
    expect(swa.recipe.swa!.val_loss).toBeGreaterThan(Math.min(...swa.history.map((h) => h.val_loss)));
    expect(swa.recipe.bnReestimated).toBeUndefined();
    expect(await finalAcc(swa)).toBeCloseTo(swa.history[swa.bestEpoch - 1]!.val_acc, 10);
    // by val_acc they tie with the best epoch and are kept, with BatchNormalization statistics measured for them
    const swaAcc = await trainNetwork(tiny, src(), src(), { ...base(), swa: 2, monitor: 'val_acc' });
    expect(swaAcc.recipe.swa).toMatchObject({ epochs: 2, kept: true });
    expect(swaAcc.recipe.bnReestimated).toEqual({ layers: 1, images: paths.length });
    expect(await finalAcc(swaAcc)).toBeCloseTo(swaAcc.recipe.swa!.val_acc, 10);
    for (const n of [plain, ema, swa, swaAcc]) await n.close();
  });

  it('progressive resizing trains the first epochs at a smaller size, then at the model\'s own; validation stays at the model\'s size', async () => {
    const lines: string[] = [];
    const logger = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m), progress: () => ({ tick() {}, done() {} }) };
    const net = await trainNetwork(tiny, src(), src(), { ...base(), progressive: [[8, 8]], logger });
    expect(lines.filter((l) => l.startsWith('progressive resizing'))).toEqual(['progressive resizing: training at 8x8 from epoch 1', 'progressive resizing: training at 16x16 from epoch 3']);
    expect(net.options.progressive).toEqual([[8, 8]]);
    expect(Math.max(...net.history.map((h) => h.val_acc))).toBeGreaterThan(0.8);
    // the result is the model at its own size
    const a = net.artifacts;
    const m = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: a.modelTopology as any, weightSpecs: a.weightSpecs as any, weightData: a.weightData }));
    expect(m.inputs[0]!.shape).toEqual([null, 16, 16, 3]);
    m.dispose();
    await net.close();
  });

  it('--bn-reestimate on a model whose trained part has no BatchNormalization says so and does nothing', async () => {
    const warnings: string[] = [];
    const logger = { info: () => {}, warn: (m: string) => warnings.push(m), progress: () => ({ tick() {}, done() {} }) };
    const net = await trainNetwork(tiny, src(), src(), { ...base(), epochs: 1, trainable: (w) => w.startsWith('out/'), batchNorm: { reestimate: {} }, logger });
    expect(net.recipe.bnReestimated).toEqual({ layers: 0, images: 0 });
    expect(warnings).toEqual(['--bn-reestimate: the trained part of this model has no BatchNormalization layers; nothing to re-estimate']);
    await net.close();
  });

  it('bad combinations are refused before training', async () => {
    await expect(trainNetwork(tiny, src(), src(), { ...base(), epochs: 2, progressive: [[8, 8], [12, 12]] })).rejects.toThrow(/--progressive: 3 sizes \(with the model's own\) need at least 3 epochs, got 2/);
    await expect(trainNetwork(tiny, src(), src(), { ...base(), batchNorm: { reestimate: { images: 0 } } })).rejects.toThrow(/--bn-reestimate takes a number of images >= 1/);
    await expect(trainNetwork(tiny, src(), src(), { ...base(), warmupEpochs: 1, schedule: 'one-cycle' })).rejects.toThrow(/--warmup does not combine with the one-cycle schedule/);
    await expect(trainNetwork(tiny, src(), src(), { ...base(), warmupEpochs: 4 })).rejects.toThrow(/--warmup must be a whole number of epochs in 0..3/);
    await expect(trainNetwork(tiny, src(), src(), { ...base(), batchNorm: { momentum: 1 } })).rejects.toThrow(/--bn-momentum must be in \[0, 1\)/);
  });
});

describe('runs: fine-tuning BatchNormalization, re-estimation, resnet-mini from scratch, CLI', () => {
  let ds: string;
  let backbone: string;
  beforeAll(async () => {
    ds = await makeDataset(tmpDir(), { classes: { red: 16, green: 16, blue: 16 }, seed: 17, size: 48 });
    backbone = await makeTinyBackbone(tmpDir());
  });
  const w = (a: LayersModelArtifacts, name: string) => Array.from(decodeWeights(a).get(name)!.data);

  it('--bn train trains gamma/beta and moves the statistics of the unfrozen blocks; --bn-reestimate re-measures frozen ones', async () => {
    const before = await readLayersModel(backbone);
    const common = { data: ds, backbone, mode: 'finetune' as const, unfreeze: 2, epochs: 2, headEpochs: 5, headLr: 0.03, lr: 0.002, batchSize: 8, microBatch: 8, seed: 3 };
    const trained = await trainFromFolder({ ...common, bn: 'train', out: path.join(tmpDir(), 'bn-train') });
    const m: any = trained.metrics;
    expect(m.finetune.bn).toBe('train');
    // c2 kernel + bias, c2_bn gamma + beta, head
    expect(m.finetune.trainableParams).toBe(3 * 3 * 8 * 16 + 16 + 2 * 16 + 16 * 3 + 3);
    expect(m.training.recipe.bnTrained).toEqual(['c2_bn']);
    const after = await readLayersModel(path.join(trained.outDir, 'model'));
    expect(w(after, 'c2_bn/gamma')).not.toEqual(w(before, 'c2_bn/gamma'));
    expect(w(after, 'c2_bn/moving_mean')).not.toEqual(w(before, 'c2_bn/moving_mean'));

    const re = await trainFromFolder({ ...common, bnReestimate: true, out: path.join(tmpDir(), 'bn-re') });
    const r: any = re.metrics;
    expect(r.training.recipe.bnTrained).toEqual([]);
    expect(r.training.recipe.bnReestimated).toEqual({ layers: 1, images: r.dataset.split.train });
    const after2 = await readLayersModel(path.join(re.outDir, 'model'));
    expect(w(after2, 'c2_bn/gamma')).toEqual(w(before, 'c2_bn/gamma'));
    expect(w(after2, 'c2_bn/moving_variance')).not.toEqual(w(before, 'c2_bn/moving_variance'));
    const both: any = (await trainFromFolder({ ...common, bn: 'train', bnReestimate: 20, out: path.join(tmpDir(), 'bn-both') })).metrics;
    expect(both.training.recipe).toMatchObject({ bnTrained: ['c2_bn'], bnReestimated: { layers: 1, images: 20 } });
    const html = await fs.readFile(re.report.html, 'utf8');
    expect(html).toContain('re-estimated after training for 1 layers');
  });

  it('resnet-mini (BatchNormalization, residual adds) trains from scratch and ships a model that loads in tfjs', async () => {
    const r = await trainFromFolder({ data: ds, mode: 'scratch', arch: 'resnet-mini', inputSize: [32, 32], epochs: 4, batchSize: 8, lr: 0.003, seed: 1, out: path.join(tmpDir(), 'resnet') });
    const m: any = r.metrics;
    expect(m.model.arch).toBe('resnet-mini');
    expect(m.training.recipe.bnTrained).toHaveLength(11);
    expect(Math.max(...r.history.map((h) => h.val_acc))).toBeGreaterThan(0.5);
    const a = await readLayersModel(path.join(r.outDir, 'model'));
    const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: a.modelTopology as any, weightSpecs: a.weightSpecs as any, weightData: a.weightData }));
    expect(model.outputs[0]!.shape).toEqual([null, 3]);
    model.dispose();
  });

  it('progressive resizing refuses a model whose layers depend on the input size (the notebook CNN flattens)', async () => {
    await expect(trainFromFolder({ data: ds, mode: 'scratch', inputSize: [64, 64], progressive: [[56, 56]], epochs: 2, batchSize: 8, out: path.join(tmpDir(), 'prog') })).rejects.toThrow(
      /this model cannot train at 56x56: its layers depend on the input size \(node .* inner dimensions differ \(32 and 128\)\); progressive resizing needs global pooling before the head/,
    );
  });

  it('CLI: recipe flags reach the run; flags the mode would not use are refused clearly', async () => {
    const ok = await runCli(['train', ds, '--mode', 'scratch', '--arch', 'resnet-mini', '--input-size', '32', '--progressive', '24', '--epochs', '2', '--batch-size', '8', '--mixup', '0.2', '--ema', '0.99', '--warmup', '1', '--out', path.join(tmpDir(), 'cli'), '--json', '--quiet']);
    expect(ok.code, ok.stderr).toBe(0);
    const m = JSON.parse(ok.stdout);
    expect(m.training).toMatchObject({ mixup: 0.2, ema: 0.99, warmupEpochs: 1, progressive: [[24, 24]] });
    const badSize = await runCli(['train', ds, '--mode', 'scratch', '--progressive', '128,x', '--out', tmpDir()]);
    expect(badSize.code).toBe(1);
    expect(badSize.stderr).toMatch(/--progressive must be a size like 224 or 160x200/);
    const transfer = await runCli(['train', ds, '--backbone', backbone, '--mixup', '0.2', '--swa', '2', '--out', tmpDir()]);
    expect(transfer.code).toBe(1);
    expect(transfer.stderr).toMatch(/--swa, --mixup apply to --mode finetune and scratch/);
    const scratchBn = await runCli(['train', ds, '--mode', 'scratch', '--bn', 'train', '--out', tmpDir()]);
    expect(scratchBn.code).toBe(1);
    expect(scratchBn.stderr).toMatch(/--bn applies to --mode finetune/);
    const badEma = await runCli(['train', ds, '--mode', 'scratch', '--ema', '1.5', '--out', tmpDir()]);
    expect(badEma.code).toBe(1);
    expect(badEma.stderr).toMatch(/--ema must be a number in \[0, 1\)/);
    // conflicts are found before anything is read or computed (here the dataset does not even exist)
    await expect(trainFromFolder({ data: '/nonexistent', mode: 'finetune', warmup: 1 })).rejects.toThrow(/--warmup does not combine with the one-cycle schedule/);
    await expect(trainFromFolder({ data: '/nonexistent', mode: 'scratch', ema: 0.9, swa: 2 })).rejects.toThrow(/--ema and --swa are two ways of averaging weights; choose one/);
    const badBn = await runCli(['train', ds, '--mode', 'finetune', '--bn', 'sometimes', '--out', tmpDir()]);
    expect(badBn.code).toBe(1);
    expect(badBn.stderr).toMatch(/--bn.*'sometimes' is invalid/);
  });
});
