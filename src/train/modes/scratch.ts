/** Training a small CNN from scratch on the images (the notebook's first model), with the onnxruntime engine. */
import type { LabelledImage } from '../../data/discover.js';
import { describeAugment } from '../../image/augment.js';
import { sharedNetworkOptions } from './common.js';
import type { DatasetSplit } from '../../data/split.js';
import { countParams } from '../../backbones/surgery.js';
import type { RunEvents } from '../../engine/events.js';
import { buildArchitecture, DEFAULT_ARCH } from '../../engine/architectures.js';
import type { BatchSource } from '../../engine/image-batches.js';
import { trainNetwork, type TrainedNetwork } from '../../engine/network.js';
import type { ModelOutcome, SplitPredictions, TrainRunOptions } from '../types.js';

export function batchSource(images: LabelledImage[]): BatchSource {
  return { paths: images.map((i) => i.path), labels: images.map((i) => i.label) };
}

export async function splitPredictions(net: TrainedNetwork, images: LabelledImage[]): Promise<SplitPredictions & { failed: BatchSource['paths'] }> {
  const src = batchSource(images);
  const r = await net.predict(src);
  return { probs: r.probs, labels: Int32Array.from(r.indices, (i) => images[i]!.label), paths: r.indices.map((i) => images[i]!.path), failed: r.failed.map((f) => f.path) };
}

export function networkDescription(net: TrainedNetwork): Array<[string, string]> {
  const t = net.options;
  const perEpoch = net.epochSeconds.reduce((a, b) => a + b, 0) / Math.max(1, net.epochSeconds.length);
  return [
    ['optimizer', `${t.optimizer}, lr ${t.lr}${t.momentum !== null ? `, momentum ${t.momentum}` : ''}${t.weightDecay ? `, weight decay ${t.weightDecay}` : ''}${t.labelSmoothing ? `, label smoothing ${t.labelSmoothing}` : ''}${t.schedule !== 'constant' ? `, ${t.schedule} schedule` : ''}`],
    ['epochs', `${net.history.length} of ${t.epochs}, batch ${t.batchSize} (micro-batches of ${t.microBatch}), best epoch ${net.bestEpoch} (by ${t.monitor})${net.stoppedEarly ? ', stopped early' : ''}; ${perEpoch.toFixed(1)} s per epoch${t.warmupEpochs ? `; ${t.warmupEpochs} warm-up epoch${t.warmupEpochs > 1 ? 's' : ''}` : ''}`],
    ...recipeDescription(net),
    ['seed', String(t.seed)],
    ['runtime', net.backend],
  ];
}

function recipeDescription(net: TrainedNetwork): Array<[string, string]> {
  const t = net.options;
  const r = net.recipe;
  const rows: Array<[string, string]> = [];
  const mix = [t.mixup ? `mixup alpha ${t.mixup}` : '', t.cutmix ? `CutMix alpha ${t.cutmix}` : ''].filter(Boolean);
  if (mix.length) rows.push(['mixing', mix.join(', ')]);
  if (t.progressive) rows.push(['progressive resizing', `${[...t.progressive.map((s) => s.join('x')), 'the model\'s own size'].join(' → ')}, ${t.epochs} epochs split evenly`]);
  if (t.ema !== null) rows.push(['weight averaging', `exponential moving average, decay ${t.ema} (validation and the result use the average)`]);
  if (r.swa) rows.push(['weight averaging', `SWA of the last ${r.swa.epochs} epochs: val_acc ${r.swa.val_acc.toFixed(4)}, ${r.swa.kept ? 'kept' : `not kept (epoch ${net.bestEpoch} validated better)`}`]);
  if (r.bnTrained.length) rows.push(['BatchNormalization', `${r.bnTrained.length} layers in training mode (batch statistics${t.bnMomentum !== null ? `, momentum ${t.bnMomentum}` : ''})`]);
  if (r.bnReestimated) rows.push(['BatchNormalization statistics', `re-estimated after training for ${r.bnReestimated.layers} layers on ${r.bnReestimated.images} training images`]);
  return rows;
}

export async function runScratch(split: DatasetSplit, classes: number, o: TrainRunOptions, ev: RunEvents): Promise<ModelOutcome & { network: TrainedNetwork }> {
  const inputSize = o.inputSize ?? [224, 224];
  const seed = o.seed ?? 42;
  const { arch, artifacts } = await buildArchitecture(o.arch ?? DEFAULT_ARCH, inputSize, classes, seed);
  const params = countParams(artifacts);
  ev.info(`model: ${arch.name} (${arch.description}), ${params.toLocaleString('en-US')} params, input ${inputSize.join('x')}, trained from scratch`);
  const t0 = performance.now();
  const resize = o.resize ?? 'squash';
  const kernel = o.kernel ?? 'linear';
  const aug = o.augment;
  const net = await ev.stage('network', () =>
    trainNetwork(artifacts, batchSource(split.train), batchSource(split.val), {
      ...sharedNetworkOptions(o, split, classes, { inputSize, resize, kernel }, ev),
      preprocessing: arch.preprocessing,
      trainable: () => true,
      label: 'scratch',
    }),
  );
  const train = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const val = await splitPredictions(net, split.val);
  const test = await splitPredictions(net, split.test);
  await net.close();
  return {
    mode: 'scratch',
    network: net,
    model: net.artifacts,
    inputSize,
    preprocessing: arch.preprocessing,
    resize,
    kernel,
    backbone: { name: arch.name, source: 'tlearn architecture (trained from scratch)', id: '', params, note: arch.description },
    history: net.history,
    val,
    test,
    failed: net.failed,
    describe: [
      ['model', `${arch.name}: ${arch.description}; ${params.toLocaleString('en-US')} params; input ${inputSize.join('x')}, x/255; trained from scratch`],
      ['mode', 'scratch: every weight trained'],
      ['augmentation', aug ? describeAugment(aug) : 'none'],
      ...networkDescription(net),
    ],
    details: {
      model: { arch: arch.name, description: arch.description, params, inputSize, preprocessing: arch.preprocessing },
      augment: aug ?? null,
      training: { ...net.options, backend: net.backend, bestEpoch: net.bestEpoch, epochsRun: net.history.length, stoppedEarly: net.stoppedEarly, secondsPerEpoch: net.epochSeconds, recipe: net.recipe },
    },
    timings: { train, evaluate: (performance.now() - t1) / 1000 },
  };
}
