/**
 * Fine-tuning: first a head on cached features with the backbone frozen (the transfer recipe), then the top
 * of the backbone unfrozen and trained with the head at lower, discriminative learning rates under a one-cycle
 * (default) or cosine schedule, BatchNormalization kept frozen in inference mode (default) or trained with batch
 * statistics (--bn train), optionally on augmented images, with the recipe options of the network trainer
 * (mixup, CutMix, EMA, SWA, re-estimated BN statistics). The best validation epoch is kept and checkpointed.
 */
import { writeLayersModel } from '../../backbones/layers-model.js';
import { describeAugment, type AugmentOptions } from '../../image/augment.js';
import { sharedNetworkOptions } from './common.js';
import type { DatasetSplit } from '../../data/split.js';
import type { RunEvents } from '../../engine/events.js';
import { groupsToUnfreeze } from '../../engine/layer-groups.js';
import { trainNetwork } from '../../engine/network.js';
import type { ModelOutcome, TrainRunOptions } from '../types.js';
import { batchSource, networkDescription, splitPredictions } from './scratch.js';
import { runTransfer } from './transfer.js';

const BN_AFFINE = /\/(gamma|beta)$/;
const BN_STATISTICS = /\/(moving_mean|moving_variance)$/;

export async function runFinetune(split: DatasetSplit, classes: number, o: TrainRunOptions & { checkpointDir?: string }, ev: RunEvents): Promise<ModelOutcome> {
  const t0 = performance.now();
  // defaults tuned on Caltech-97 with MobileNetV2-0.35 (see BENCHMARKS.md): a short head stage, so the head does
  // not memorise un-augmented features, then a one-cycle fine-tune of the top 8 blocks, label smoothing 0.1,
  // dropout 0.2 before the head, and the epoch with the best validation accuracy kept
  o = { ...o, labelSmoothing: o.labelSmoothing ?? 0.1, dropout: o.dropout ?? 0.2, monitor: o.monitor ?? 'val_acc' };
  const headEpochs = o.headEpochs ?? 3;
  ev.info(`fine-tuning, stage 1: a new head on the frozen backbone's cached features (${headEpochs} epochs)`);
  const stage1 = await runTransfer(split, classes, { ...o, epochs: headEpochs, lr: o.headLr, schedule: undefined }, ev, undefined, true);
  const backbone = stage1.backboneObj;
  const groups = groupsToUnfreeze(backbone.artifacts.modelTopology, o.unfreeze ?? 8);
  const unfrozen = new Set(groups.flatMap((g) => g.layers));
  const headLayers = new Set((stage1.headModel.modelTopology.config.layers as any[]).map((l) => l.config.name));
  // discriminative rates: the head at lr, the unfrozen groups from lr/2 (top) down to lr/10 (deepest)
  const rate = new Map<string, number>();
  groups.forEach((g, i) => {
    const depth = groups.length - i;
    const m = groups.length === 1 ? 0.5 : 0.5 * (0.2 ** ((depth - 1) / (groups.length - 1)));
    for (const l of g.layers) rate.set(l, m);
  });
  const layerOf = (w: string) => w.split('/')[0]!;
  const bnMode = o.bn ?? 'frozen';
  if (bnMode !== 'frozen' && bnMode !== 'train') throw new Error(`--bn must be frozen or train, got '${bnMode as string}'`);
  // BatchNormalization trains (batch statistics, gamma/beta) when its gamma/beta are trainable
  const trainable = (w: string) => !BN_STATISTICS.test(w) && (bnMode === 'train' || !BN_AFFINE.test(w)) && (headLayers.has(layerOf(w)) || unfrozen.has(layerOf(w)));
  const bnWords = bnMode === 'train' ? 'BatchNormalization in training mode (batch statistics)' : 'BatchNormalization frozen in inference mode';
  ev.info(`fine-tuning, stage 2: unfreezing ${groups.length} group${groups.length === 1 ? '' : 's'} (${groups.map((g) => g.name).join(', ') || 'none'}) + the head; ${bnWords}`);
  const aug: AugmentOptions | undefined = o.augment;
  const kernel = o.kernel ?? 'linear';
  const shared = sharedNetworkOptions(o, split, classes, { inputSize: backbone.inputSize, resize: backbone.resize, kernel }, ev);
  // re-estimation covers the unfrozen blocks' BatchNormalization layers (their inputs change as the blocks train)
  const reestimate = shared.batchNorm?.reestimate ? { ...shared.batchNorm.reestimate, layers: (l: string) => unfrozen.has(l) } : undefined;
  const net = await ev.stage('network', () => trainNetwork(stage1.model, batchSource(split.train), batchSource(split.val), {
    ...shared,
    batchNorm: { ...shared.batchNorm, reestimate },
    preprocessing: backbone.preprocessing,
    trainable,
    lrMultiplier: (w) => (headLayers.has(layerOf(w)) ? 1 : (rate.get(layerOf(w)) ?? 0.1)),
    batchSize: o.batchSize ?? 32,
    microBatch: o.microBatch ?? 32,
    lr: o.lr ?? (o.optimizer === 'sgd' ? 1e-2 : 1e-3),
    schedule: o.schedule ?? 'one-cycle',
    onBest: o.checkpointDir
      ? async (artifacts, epoch) => {
          await writeLayersModel(o.checkpointDir!, artifacts);
          ev.info(`  checkpoint: epoch ${epoch} written to ${o.checkpointDir}`);
        }
      : undefined,
    label: 'fine-tune',
  }));
  const train = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const val = await splitPredictions(net, split.val);
  const test = await splitPredictions(net, split.test);
  await net.close();
  const history = net.history;
  return {
    mode: 'finetune',
    model: net.artifacts,
    inputSize: backbone.inputSize,
    preprocessing: backbone.preprocessing,
    resize: backbone.resize,
    kernel,
    backbone: stage1.backbone,
    head: stage1.head,
    history,
    val,
    test,
    failed: [...stage1.failed, ...net.failed],
    describe: [
      stage1.describe[0]!,
      ['mode', `fine-tuning: head first (${stage1.history.length} epochs on cached features, val_acc ${stage1.history.at(-1)?.val_acc.toFixed(4)}), then ${groups.map((g) => g.name).join(', ')} unfrozen with the head; ${bnWords}`],
      ['trained parameters', `${net.trainableParams.toLocaleString('en-US')}`],
      ['learning rates', `head ${net.options.lr}, unfrozen groups ${[...new Set(groups.map((g) => rate.get(g.layers[0]!)))].map((m) => (net.options.lr * m!).toExponential(1)).join(' … ')}; ${net.options.schedule} schedule`],
      ['augmentation', aug ? describeAugment(aug) : 'none'],
      ...networkDescription(net),
    ],
    details: {
      ...stage1.details,
      finetune: {
        unfrozenGroups: groups.map((g) => g.name),
        trainableParams: net.trainableParams,
        augment: aug ?? null,
        bn: bnMode,
        headStage: { epochs: stage1.history.length, history: stage1.history },
      },
      training: { ...net.options, backend: net.backend, bestEpoch: net.bestEpoch, epochsRun: history.length, stoppedEarly: net.stoppedEarly, secondsPerEpoch: net.epochSeconds, recipe: net.recipe },
    },
    timings: { ...stage1.timings, train, evaluate: (performance.now() - t1) / 1000 },
  };
}

