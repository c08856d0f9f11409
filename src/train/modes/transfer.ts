/** Transfer learning: a frozen backbone's cached features and a new head (the notebook's VGG16 recipe). */
import type * as TF from '@tensorflow/tfjs';
import { loadBackbone, type Backbone } from '../../backbones/load.js';
import type { LayersModelArtifacts } from '../../backbones/layers-model.js';
import { composeClassifier } from '../../classifier/compose.js';
import type { LabelledImage } from '../../data/discover.js';
import type { DatasetSplit } from '../../data/split.js';
import { createFeatureExtractor, tfliteFeatureOnnx, type FeatureSet } from '../../features/extract.js';
import { getTf } from '../../runtime/tfjs.js';
import type { RunEvents } from '../../engine/events.js';
import { modelArtifacts } from '../../engine/architectures.js';
import { predictHead, trainHead, type LabelledFeatures } from '../../engine/fit.js';
import type { ModelOutcome, SplitPredictions, TrainRunOptions } from '../types.js';

/**
 * Epochs of the head on cached features when none are given. Chosen by validation accuracy on Caltech-97 (seed 42,
 * the best epoch by val_loss kept): 10 epochs 0.8927, 20 0.8970, 30 0.8981, 40 0.8991, and the head was still improving at 10;
 * the epochs cost about a quarter of a second each on cached features. See ACCURACY.md for ants/bees.
 */
export const TRANSFER_EPOCHS = 40;

/** Rows of a feature set for the images that decoded, with their labels. */
function labelled(images: LabelledImage[], f: FeatureSet): { data: LabelledFeatures; kept: LabelledImage[] } {
  const kept: number[] = [];
  f.ok.forEach((ok, i) => ok && kept.push(i));
  const x = new Float32Array(kept.length * f.dim);
  const y = new Int32Array(kept.length);
  kept.forEach((i, k) => {
    x.set(f.features.subarray(i * f.dim, (i + 1) * f.dim), k * f.dim);
    y[k] = images[i]!.label;
  });
  return { data: { x, y, dim: f.dim }, kept: kept.map((i) => images[i]!) };
}

function slice(f: FeatureSet, from: number, to: number): FeatureSet {
  return { ...f, features: f.features.subarray(from * f.dim, to * f.dim), ok: f.ok.slice(from, to), hashes: f.hashes.slice(from, to) };
}

export async function loadRunBackbone(o: TrainRunOptions, ev: RunEvents): Promise<Backbone> {
  const backbone = await loadBackbone(o.backbone, { preprocessing: o.preprocessing, cutAt: o.cutAt, weights: o.weights, tfliteForm: o.dequantize ? 'float' : undefined, tfliteExactWeights: o.exactWeights, logger: ev.logger() });
  if (o.resize) backbone.resize = o.resize;
  return backbone;
}

/**
 * Trains a head on cached features; `backbone` may be given (compare and fine-tune reuse it). With
 * `skipTest` (fine-tuning's first stage) the test split is not touched and `test` is empty.
 */
export async function runTransfer(split: DatasetSplit, classes: number, o: TrainRunOptions, ev: RunEvents, given?: Backbone, skipTest = false): Promise<ModelOutcome & { backboneObj: Backbone; head: NonNullable<ModelOutcome['head']>; headModel: LayersModelArtifacts }> {
  const timings: Record<string, number> = {};
  let t = performance.now();
  ev.emit({ type: 'stage', stage: 'backbone', state: 'start' });
  const backbone = given ?? (await loadRunBackbone(o, ev));
  const kernel = o.kernel ?? 'linear';
  // int8: calibrated on (a spread-out sample of) the training split only
  const int8 = o.int8 ? { calibration: split.train.map((i) => i.path), calibrationImages: typeof o.int8 === 'number' ? o.int8 : undefined } : undefined;
  const fx = await createFeatureExtractor(backbone, {
    cache: o.cache,
    kernel,
    threads: o.threads,
    logger: ev.logger(),
    signal: ev.signal,
    int8,
    onProgress: (p) => ev.emit({ type: 'extract', name: p.label, done: p.done, total: p.total, cached: p.cached, rate: p.rate, etaSeconds: p.etaSeconds }),
  });
  ev.info(`backbone: ${backbone.name} (${backbone.note}), ${backbone.params.toLocaleString('en-US')} params, ${fx.dim}-d features, input ${backbone.inputSize.join('x')}, preprocessing ${backbone.preprocessing}, ${fx.runtime}`);
  timings.backbone = (performance.now() - t) / 1000;
  ev.emit({ type: 'stage', stage: 'backbone', state: 'end', seconds: timings.backbone });

  const trainVal = [...split.train, ...split.val];
  let fTrainVal: FeatureSet;
  try {
    fTrainVal = await ev.stage('features', () => fx.extract(trainVal.map((i) => i.path), 'features train+val'));
  } catch (e) {
    await fx.close();
    throw e;
  }
  const trainRows = labelled(split.train, slice(fTrainVal, 0, split.train.length));
  const valRows = labelled(split.val, slice(fTrainVal, split.train.length, trainVal.length));
  for (const f of fTrainVal.failed) ev.warn(`skipped ${f.path}: ${f.reason}`);
  timings.features = fTrainVal.seconds;

  t = performance.now();
  const tf = await getTf();
  let trained: Awaited<ReturnType<typeof trainHead>>;
  try {
    trained = await ev.stage('head', () => trainHead(trainRows.data, valRows.data, {
    classes,
    kind: o.head,
    hidden: o.hidden,
    dropout: o.dropout,
    optimizer: o.optimizer,
    lr: o.lr,
    momentum: o.momentum,
    epochs: o.epochs ?? TRANSFER_EPOCHS,
    batchSize: o.batchSize,
    weightDecay: o.weightDecay,
    labelSmoothing: o.labelSmoothing,
    classWeights: o.classWeights === 'auto' ? 'auto' : undefined,
    patience: o.patience,
    monitor: o.monitor,
    seed: o.seed,
    onEvent: (e) => ev.emit(e),
    signal: ev.signal,
  }));
  } catch (e) {
    await fx.close();
    throw e;
  }
  timings.train = (performance.now() - t) / 1000;

  // the test split is only touched now, after training
  let fTest: FeatureSet;
  try {
    fTest = skipTest
      ? { features: new Float32Array(0), dim: fx.dim, ok: [], hashes: [], failed: [], fromCache: 0, computed: 0, seconds: 0, modelSeconds: 0 }
      : await ev.stage('features', () => fx.extract(split.test.map((i) => i.path), 'features test'));
  } finally {
    await fx.close();
  }
  for (const f of fTest.failed) ev.warn(`skipped ${f.path}: ${f.reason}`);
  timings.features += fTest.seconds;
  t = performance.now();
  const testRows = labelled(skipTest ? [] : split.test, fTest);
  const pred = async (rows: { data: LabelledFeatures; kept: LabelledImage[] }): Promise<SplitPredictions> => ({
    probs: await predictHead(trained.model, rows.data.x, fx.dim),
    labels: rows.data.y,
    paths: rows.kept.map((i) => i.path),
  });
  const val = await pred(valRows);
  const test = await pred(testRows);
  timings.evaluate = (performance.now() - t) / 1000;
  const head = await modelArtifacts(tf as typeof TF, trained.model);
  trained.model.dispose();
  const computed = fTrainVal.computed + fTest.computed;
  const tr = trained.options;
  return {
    mode: 'transfer',
    model: backbone.artifacts ? composeClassifier(backbone.artifacts, head) : head,
    ...(backbone.tflite ? { featureOnnx: tfliteFeatureOnnx(backbone.tflite) } : {}),
    headModel: head,
    backboneObj: backbone,
    inputSize: backbone.inputSize,
    preprocessing: backbone.preprocessing,
    resize: backbone.resize,
    kernel,
    backbone: { name: backbone.name, source: backbone.source, id: backbone.id, params: backbone.params, note: backbone.note },
    head: trained.spec,
    history: trained.history,
    val,
    test,
    failed: [...fTrainVal.failed, ...fTest.failed],
    describe: [
      ['backbone', `${backbone.name} (${backbone.note}); ${backbone.params.toLocaleString('en-US')} params; ${fx.dim}-d features; input ${backbone.inputSize.join('x')}; preprocessing ${backbone.preprocessing}; ${backbone.resize}`],
      ['mode', `transfer learning: frozen backbone, new ${trained.spec.kind} head${trained.spec.kind === 'mlp' ? ` (${trained.spec.hidden} hidden, dropout ${trained.spec.dropout})` : trained.spec.dropout ? ` (dropout ${trained.spec.dropout})` : ''}`],
      ['optimizer', `${tr.optimizer}, lr ${tr.lr}${tr.momentum !== null ? `, momentum ${tr.momentum}` : ''}${tr.weightDecay ? `, weight decay ${tr.weightDecay}` : ''}${tr.labelSmoothing ? `, label smoothing ${tr.labelSmoothing}` : ''}${tr.classWeights ? ', class weights auto' : ''}`],
      ['epochs', `${trained.history.length} of ${tr.epochs}, batch ${tr.batchSize}, best epoch ${trained.bestEpoch} (by val_loss)${trained.stoppedEarly ? ', stopped early' : ''}`],
      ['seed', String(tr.seed)],
      ['runtime', `features: ${fx.runtime}; head: ${trained.backend}`],
      ['features', `${computed} computed, ${fTrainVal.fromCache + fTest.fromCache} from the cache`],
    ],
    details: {
      backbone: {
        name: backbone.name,
        source: backbone.source,
        id: backbone.id,
        params: backbone.params,
        featureDim: fx.dim,
        inputSize: backbone.inputSize,
        preprocessing: backbone.preprocessing,
        resize: backbone.resize,
        note: backbone.note,
        runtime: fx.runtime,
      },
      head: trained.spec,
      training: { ...tr, backend: trained.backend, bestEpoch: trained.bestEpoch, epochsRun: trained.history.length, stoppedEarly: trained.stoppedEarly },
      features: {
        fromCache: fTrainVal.fromCache + fTest.fromCache,
        computed,
        seconds: timings.features,
        forwardSeconds: fTrainVal.modelSeconds + fTest.modelSeconds,
        imagesPerSecond: computed ? computed / timings.features : null,
      },
    },
    timings,
  };
}
