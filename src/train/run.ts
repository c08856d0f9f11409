/**
 * The whole transfer-learning run in one call: discover → split → backbone → cached features → head →
 * test metrics → a shipped model, with everything written to the run folder.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { loadBackbone, type Backbone } from '../backbones/load.js';
import type { LayersModelArtifacts } from '../backbones/layers-model.js';
import { writeLayersModel } from '../backbones/layers-model.js';
import type { PreprocessMode } from '../backbones/preprocess.js';
import { composeClassifier } from '../classifier/compose.js';
import { makeMetadata } from '../classifier/metadata.js';
import type { ResizeKernel, ResizeMode } from '../data/decode.js';
import { loadImageFolder, type ImageFolder, type LabelledImage, type SkippedFile } from '../data/discover.js';
import { splitDataset, splitToJson, type DatasetSplit, type SplitMode } from '../data/split.js';
import { formatSummary, summarizeDataset, type DatasetSummary } from '../data/summary.js';
import { computeMetrics, type Metrics } from '../evaluate/metrics.js';
import { createFeatureExtractor, type FeatureSet } from '../features/extract.js';
import { getTf } from '../runtime/tfjs.js';
import { writeFileAtomic } from '../util/fs.js';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import { VERSION } from '../version.js';
import { predictionsCsv, topLossGallery, writeReport, type ReportFiles } from '../report/html.js';
import { Rng } from '../util/rng.js';
import { predictHead, trainHead, type EpochLog, type LabelledFeatures, type TrainedHead } from './fit.js';
import type { HeadKind } from './head.js';
import type { OptimizerName } from './optimizers.js';

export interface TrainRunOptions {
  /** Folder of class folders (or train/ val/ [test/] folders of class folders). */
  data: string;
  exclude?: string[];
  split?: [number, number, number];
  seed?: number;
  splitMode?: SplitMode;
  /** Zoo name or TF.js layers model folder (default mobilenet_v2_0.35). */
  backbone?: string;
  preprocessing?: PreprocessMode;
  resize?: ResizeMode;
  kernel?: ResizeKernel;
  cutAt?: string;
  head?: HeadKind;
  hidden?: number;
  dropout?: number;
  optimizer?: OptimizerName;
  lr?: number;
  momentum?: number;
  epochs?: number;
  batchSize?: number;
  weightDecay?: number;
  labelSmoothing?: number;
  classWeights?: 'auto' | 'none';
  patience?: number;
  /** Run folder (default runs/<timestamp>). */
  out?: string;
  /** Use the features cache (default true). */
  cache?: boolean;
  threads?: number;
  logger?: Logger;
}

export interface SplitMetrics extends Metrics {}

export interface RunMetrics {
  tlearnVersion: string;
  createdAt: string;
  outDir: string;
  dataset: DatasetSummary & { classNames: string[]; skippedFiles: SkippedFile[]; splitMode: DatasetSplit['mode']; seed: number; fractions: number[] };
  backbone: { name: string; source: string; id: string; params: number; featureDim: number; inputSize: [number, number]; preprocessing: string; resize: string; note: string; runtime: string };
  head: TrainedHead['spec'];
  training: TrainedHead['options'] & { backend: string; bestEpoch: number; epochsRun: number; stoppedEarly: boolean };
  features: { fromCache: number; computed: number; seconds: number; imagesPerSecond: number | null };
  val: SplitMetrics;
  test: SplitMetrics;
  timings: Record<'discover' | 'split' | 'backbone' | 'features' | 'train' | 'evaluate' | 'save' | 'total', number>;
}

export interface TrainRunResult {
  outDir: string;
  metrics: RunMetrics;
  history: EpochLog[];
  /** report.html and the PNG plots next to it. */
  report: ReportFiles;
}

function timestamp(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, '').replace(/:/g, '-');
}

async function headArtifacts(tf: typeof TF, model: TF.LayersModel): Promise<LayersModelArtifacts> {
  let saved: any;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  const data = saved.weightData;
  const weightData = Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data;
  return { modelTopology: saved.modelTopology, weightSpecs: saved.weightSpecs, weightData };
}

/** Rows of `fs` for the images that decoded, with their labels; failed ones are returned separately. */
function labelled(images: LabelledImage[], fs_: FeatureSet): { data: LabelledFeatures; kept: LabelledImage[] } {
  const kept: number[] = [];
  fs_.ok.forEach((ok, i) => ok && kept.push(i));
  const x = new Float32Array(kept.length * fs_.dim);
  const y = new Int32Array(kept.length);
  kept.forEach((i, k) => {
    x.set(fs_.features.subarray(i * fs_.dim, (i + 1) * fs_.dim), k * fs_.dim);
    y[k] = images[i]!.label;
  });
  return { data: { x, y, dim: fs_.dim }, kept: kept.map((i) => images[i]!) };
}

export function classCounts(ds: ImageFolder): number[] {
  const counts = ds.classes.map(() => 0);
  for (const im of ds.images) counts[im.label]!++;
  return counts;
}

/** 16 seeded random images with their labels (the notebook's sample grid). */
export function sampleImages(images: LabelledImage[], classes: string[], seed: number, n = 16): Array<{ path: string; label: string }> {
  return new Rng(seed + 1)
    .shuffle([...images])
    .slice(0, n)
    .map((i) => ({ path: i.path, label: classes[i.label]! }));
}

function runSummaryRows(m: RunMetrics): Array<[string, string]> {
  const t = m.training;
  return [
    ['data', m.dataset.root],
    ['classes / images', `${m.dataset.classes} / ${m.dataset.images}${m.dataset.excluded.length ? ` (excluded: ${m.dataset.excluded.join(', ')})` : ''}`],
    ['split (train / val / test)', `${m.dataset.split!.train} / ${m.dataset.split!.val} / ${m.dataset.split!.test} — ${m.dataset.split!.note}`],
    ['skipped files', String(m.dataset.skippedFiles.length)],
    ['backbone', `${m.backbone.name} (${m.backbone.note}); ${m.backbone.params.toLocaleString('en-US')} params; ${m.backbone.featureDim}-d features; input ${m.backbone.inputSize.join('x')}; preprocessing ${m.backbone.preprocessing}; ${m.backbone.resize}`],
    ['mode', `transfer learning: frozen backbone, new ${m.head.kind} head${m.head.kind === 'mlp' ? ` (${m.head.hidden} hidden, dropout ${m.head.dropout})` : m.head.dropout ? ` (dropout ${m.head.dropout})` : ''}`],
    ['optimizer', `${t.optimizer}, lr ${t.lr}${t.momentum !== null ? `, momentum ${t.momentum}` : ''}${t.weightDecay ? `, weight decay ${t.weightDecay}` : ''}${t.labelSmoothing ? `, label smoothing ${t.labelSmoothing}` : ''}${t.classWeights ? ', class weights auto' : ''}`],
    ['epochs', `${t.epochsRun} of ${t.epochs}, batch ${t.batchSize}, best epoch ${t.bestEpoch} (by val_loss)${t.stoppedEarly ? ', stopped early' : ''}`],
    ['seed', String(t.seed)],
    ['runtime', `features: ${m.backbone.runtime}; head: ${t.backend}`],
    ['features', `${m.features.computed} computed, ${m.features.fromCache} from the cache`],
    ['tlearn', m.tlearnVersion],
  ];
}

export async function trainFromFolder(o: TrainRunOptions): Promise<TrainRunResult> {
  const log = o.logger ?? silentLogger;
  const t: Partial<RunMetrics['timings']> = {};
  const tStart = performance.now();
  let mark = tStart;
  const lap = (k: keyof RunMetrics['timings']) => {
    const now = performance.now();
    t[k] = (now - mark) / 1000;
    mark = now;
  };

  const ds: ImageFolder = await loadImageFolder(o.data, { exclude: o.exclude });
  for (const w of ds.warnings) log.warn(w);
  lap('discover');
  const split = splitDataset(ds, { fractions: o.split, seed: o.seed, mode: o.splitMode });
  for (const [name, part] of Object.entries({ train: split.train, val: split.val, test: split.test })) {
    if (!part.length) throw new Error(`the ${name} split is empty (${ds.images.length} images); use a larger dataset or change --split`);
  }
  const outDir = path.resolve(o.out ?? path.join('runs', timestamp()));
  await fs.mkdir(outDir, { recursive: true });
  await writeFileAtomic(path.join(outDir, 'split.json'), JSON.stringify(splitToJson(ds, split)));
  for (const line of formatSummary(summarizeDataset(ds, split))) log.info(line);
  for (const s of ds.skipped) log.info(`  skipped ${s.path}: ${s.reason}`);
  lap('split');

  const backbone: Backbone = await loadBackbone(o.backbone, { preprocessing: o.preprocessing, cutAt: o.cutAt, logger: log });
  if (o.resize) backbone.resize = o.resize;
  const kernel = o.kernel ?? 'linear';
  const fx = await createFeatureExtractor(backbone, { cache: o.cache, kernel, threads: o.threads, logger: log });
  log.info(`backbone: ${backbone.name} (${backbone.note}), ${backbone.params.toLocaleString('en-US')} params, ${fx.dim}-d features, input ${backbone.inputSize.join('x')}, preprocessing ${backbone.preprocessing}, ${fx.runtime}`);
  lap('backbone');

  const trainVal = [...split.train, ...split.val];
  const fTrainVal = await fx.extract(
    trainVal.map((i) => i.path),
    'features train+val',
  );
  const failed: SkippedFile[] = [...fTrainVal.failed];
  const trainRows = labelled(split.train, { ...fTrainVal, features: fTrainVal.features.subarray(0, split.train.length * fx.dim), ok: fTrainVal.ok.slice(0, split.train.length) });
  const valRows = labelled(split.val, { ...fTrainVal, features: fTrainVal.features.subarray(split.train.length * fx.dim), ok: fTrainVal.ok.slice(split.train.length) });
  for (const f of fTrainVal.failed) log.warn(`skipped ${f.path}: ${f.reason}`);
  lap('features');

  const tf = await getTf();
  const trained = await trainHead(trainRows.data, valRows.data, {
    classes: ds.classes.length,
    kind: o.head,
    hidden: o.hidden,
    dropout: o.dropout,
    optimizer: o.optimizer,
    lr: o.lr,
    momentum: o.momentum,
    epochs: o.epochs,
    batchSize: o.batchSize,
    weightDecay: o.weightDecay,
    labelSmoothing: o.labelSmoothing,
    classWeights: o.classWeights === 'auto' ? 'auto' : undefined,
    patience: o.patience,
    seed: o.seed,
    logger: log,
  });
  lap('train');

  const tEval = performance.now();
  const fTest = await fx.extract(
    split.test.map((i) => i.path),
    'features test',
  );
  await fx.close();
  failed.push(...fTest.failed);
  for (const f of fTest.failed) log.warn(`skipped ${f.path}: ${f.reason}`);
  const testRows = labelled(split.test, fTest);
  const featureSeconds = fTrainVal.seconds + fTest.seconds;
  const computed = fTrainVal.computed + fTest.computed;
  t.features! += fTest.seconds;
  const valProbs = await predictHead(trained.model, valRows.data.x, fx.dim);
  const testProbs = await predictHead(trained.model, testRows.data.x, fx.dim);
  const val = computeMetrics(valProbs, valRows.data.y, ds.classes);
  const test = computeMetrics(testProbs, testRows.data.y, ds.classes);
  t.evaluate = (performance.now() - tEval) / 1000 - fTest.seconds;
  mark = performance.now();

  const head = await headArtifacts(tf, trained.model);
  const model = composeClassifier(backbone.artifacts, head);
  const modelDir = path.join(outDir, 'model');
  await writeLayersModel(modelDir, model);
  const metadata = makeMetadata({
    labels: ds.classes,
    inputSize: backbone.inputSize,
    preprocessing: backbone.preprocessing,
    resize: backbone.resize,
    kernel,
    backbone: { name: backbone.name, source: backbone.source, id: backbone.id, params: backbone.params, note: backbone.note },
    head: trained.spec,
  });
  await writeFileAtomic(path.join(modelDir, 'metadata.json'), JSON.stringify(metadata, null, 2));
  trained.model.dispose();
  lap('save');
  t.total = (performance.now() - tStart) / 1000;

  const summary = summarizeDataset(ds, split, failed);
  const metrics: RunMetrics = {
    tlearnVersion: VERSION,
    createdAt: new Date().toISOString(),
    outDir,
    dataset: {
      ...summary,
      split: { train: trainRows.kept.length, val: valRows.kept.length, test: testRows.kept.length, note: split.note },
      classNames: ds.classes,
      skippedFiles: [...ds.skipped, ...failed],
      splitMode: split.mode,
      seed: split.seed,
      fractions: split.fractions,
    },
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
    training: { ...trained.options, backend: trained.backend, bestEpoch: trained.bestEpoch, epochsRun: trained.history.length, stoppedEarly: trained.stoppedEarly },
    features: { fromCache: fTrainVal.fromCache + fTest.fromCache, computed, seconds: featureSeconds, imagesPerSecond: computed ? computed / featureSeconds : null },
    val,
    test,
    timings: t as RunMetrics['timings'],
  };
  await writeFileAtomic(path.join(outDir, 'metrics.json'), JSON.stringify(metrics, null, 2));
  await writeFileAtomic(path.join(outDir, 'history.json'), JSON.stringify(trained.history, null, 2));
  const testPaths = testRows.kept.map((i) => i.path);
  await writeFileAtomic(path.join(outDir, 'test-predictions.csv'), predictionsCsv(testProbs, testRows.data.y, testPaths, ds.classes));
  const report = await writeReport(outDir, {
    title: `${path.basename(ds.root)}: ${backbone.name} + ${trained.spec.kind} head`,
    kind: 'train',
    createdAt: metrics.createdAt,
    version: VERSION,
    summary: runSummaryRows(metrics),
    classes: ds.classes,
    classCounts: classCounts(ds),
    samples: sampleImages(trainRows.kept, ds.classes, split.seed),
    models: [{ name: 'transfer', history: trained.history, test }],
    primary: { name: 'transfer', metrics: test, split: 'test' },
    gallery: topLossGallery(testProbs, testRows.data.y, testPaths, ds.classes),
    timings: metrics.timings,
  });
  return { outDir, metrics, history: trained.history, report };
}
