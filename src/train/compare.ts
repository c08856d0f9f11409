/**
 * `compare`: the classic notebook in one call. On one split, with the same optimizer and hyperparameters, train
 * (1) a CNN from scratch and (2) a new softmax head on a frozen pretrained backbone; print both Keras-style
 * summaries and histories, evaluate both on the test split, and draw the notebook's figure: validation loss
 * (left) and validation accuracy (right) per epoch, scratch vs transfer.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { LayersModelArtifacts } from '../backbones/layers-model.js';
import { composeClassifier } from '../classifier/compose.js';
import { buildOnnxGraph } from '../onnx/convert.js';
import { computeMetrics, type Metrics } from '../evaluate/metrics.js';
import { summarizeTopology, type ModelSummary } from '../models/summary.js';
import { writeReport, topLossGallery, type ReportFiles } from '../report/html.js';
import { lineChart, sideBySide } from '../report/svg.js';
import { svgToPng } from '../report/thumbnails.js';
import { getTf } from '../runtime/tfjs.js';
import { writeFileAtomic } from '../util/fs.js';

import { VERSION } from '../version.js';
import { buildArchitecture, DEFAULT_ARCH, modelArtifacts } from '../engine/architectures.js';
import type { EpochLog } from '../engine/fit.js';
import { buildHead, headSpec } from '../engine/head.js';
import { calibrateOutcome } from './calibrate.js';
import { runScratch } from './modes/scratch.js';
import { loadRunBackbone, runTransfer } from './modes/transfer.js';
import { classCounts, datasetRows, sampleImages, writeRunFolder, type RunFolder } from './outcome.js';
import { emitEvaluation, runTitle, runWithEvents, startRun, withRun, type StartedRun } from './run.js';
import { STATE_FILE } from './run-folder.js';
import type { ModelOutcome, RunRequest } from './types.js';

export interface CompareSide {
  name: 'scratch' | 'transfer';
  runDir: string;
  params: { total: number; trainable: number };
  history: EpochLog[];
  test: Pick<Metrics, 'accuracy' | 'loss' | 'top5' | 'balancedAccuracy'> & { n: number };
  wallSeconds: number;
  secondsPerEpoch: number;
}

export interface CompareResult {
  outDir: string;
  summaries: { scratch: ModelSummary; transfer: ModelSummary };
  scratch: CompareSide;
  transfer: CompareSide;
  figure: { png: string; svg: string };
  report: ReportFiles;
  runs: { scratch: RunFolder; transfer: RunFolder };
}

/** The notebook's figure: validation loss (left) and validation accuracy (right, 0..1) per epoch. */
export function compareFigure(sides: Array<{ name: string; history: EpochLog[] }>): string {
  const colors = ['#d62728', '#1f77b4'];
  const loss = lineChart(
    sides.map((s, i) => ({ name: s.name, points: s.history.map((h) => [h.epoch, h.val_loss] as [number, number]), color: colors[i] })),
    { title: 'Validation loss', xLabel: 'epoch', yLabel: 'loss', integerX: true, yMin: 0, width: 500, height: 360 },
  );
  const acc = lineChart(
    sides.map((s, i) => ({ name: s.name, points: s.history.map((h) => [h.epoch, h.val_acc] as [number, number]), color: colors[i] })),
    { title: 'Validation accuracy', xLabel: 'epoch', yLabel: 'accuracy', integerX: true, yMin: 0, yMax: 1, width: 500, height: 360, legend: 'bottom-right' },
  );
  return sideBySide(loss, acc, 500, 500, 360);
}

function side(name: 'scratch' | 'transfer', run: RunFolder, summary: ModelSummary, wallSeconds: number, epochSeconds: number[]): CompareSide {
  const t = run.metrics.test;
  return {
    name,
    runDir: run.outDir,
    params: { total: summary.total, trainable: summary.trainable },
    history: run.history,
    test: { n: t.n, accuracy: t.accuracy, loss: t.loss, top5: t.top5, balancedAccuracy: t.balancedAccuracy },
    wallSeconds,
    secondsPerEpoch: epochSeconds.reduce((a, b) => a + b, 0) / Math.max(1, epochSeconds.length),
  };
}

/**
 * Events: one stream for the compare ('run-start' with mode 'compare', then the scratch side's events labelled
 * 'scratch' and the transfer side's labelled 'transfer', each with its calibration and evaluations, then one
 * 'done' with the transfer side's test accuracy).
 */
export async function compareOnFolder(request: RunRequest): Promise<CompareResult> {
  return runWithEvents(
    request,
    async (ev) => {
      const run = await startRun('compare', request, ev);
      return withRun('compare', run, () => compareRun(run));
    },
    (r) => ({ outDir: r.outDir, testAccuracy: r.transfer.test.accuracy }),
  );
}

async function compareRun(run: StartedRun): Promise<CompareResult> {
  const { ds, split, outDir, timings, audit, o, events: ev } = run;
  const log = ev;
  const classes = ds.classes.length;
  const seed = o.seed ?? 42;
  const tf = await getTf();

  // both summaries first, as the notebook prints model.summary() before training
  const inputSize = o.inputSize ?? [224, 224];
  const scratchArch = await buildArchitecture(o.arch ?? DEFAULT_ARCH, inputSize, classes, seed);
  const scratchSummary = await summarizeTopology(scratchArch.artifacts.modelTopology);
  const backbone = await loadRunBackbone(o, ev);
  const probeHead = buildHead(tf, headSpec(await featureDim(backbone.artifacts), classes, { kind: o.head, hidden: o.hidden, dropout: o.dropout }), 'softmax', seed);
  const headArt = await modelArtifacts(tf, probeHead);
  probeHead.dispose();
  const headLayers = new Set((headArt.modelTopology.config.layers as any[]).map((l) => l.config.name));
  const transferSummary = await summarizeTopology(composeClassifier(backbone.artifacts, headArt).modelTopology, { trainable: (n) => headLayers.has(n) });
  log.info(`\nscratch model (${scratchArch.arch.name}):\n${scratchSummary.text}`);
  log.info(`\ntransfer model (${backbone.name}, frozen, + new head):\n${transferSummary.text}\n`);

  const subRun = async (name: 'scratch' | 'transfer', outcome: ModelOutcome, seconds: number): Promise<RunFolder> => {
    const dir = path.join(outDir, name);
    const side = ev.withLabel(name);
    const r = await side.stage('report', async () => {
      await fs.mkdir(dir, { recursive: true });
      await fs.copyFile(path.join(outDir, 'split.json'), path.join(dir, 'split.json'));
      return writeRunFolder(dir, ds, split, { ...outcome, details: { ...outcome.details, audit } }, timings, runTitle(ds, outcome));
    });
    emitEvaluation(side, r);
    log.info(`${name}: test accuracy ${r.metrics.test.accuracy.toFixed(4)}, test loss ${r.metrics.test.loss.toFixed(4)} (${seconds.toFixed(1)} s)`);
    return r;
  };

  let t = performance.now();
  const scratchEv = ev.withLabel('scratch');
  const scratch = calibrateOutcome(await runScratch(split, classes, { ...o, checkpoint: { file: path.join(outDir, 'scratch', STATE_FILE), resume: run.resume } }, scratchEv), scratchEv, o.calibrate ?? true);
  const scratchWall = (performance.now() - t) / 1000;
  const scratchRun = await subRun('scratch', scratch, scratchWall);

  t = performance.now();
  const transferEv = ev.withLabel('transfer');
  const transfer = calibrateOutcome(await runTransfer(split, classes, o, transferEv, backbone), transferEv, o.calibrate ?? true);
  const transferWall = (performance.now() - t) / 1000;
  const transferRun = await subRun('transfer', transfer, transferWall);

  const svg = compareFigure([
    { name: 'scratch', history: scratch.history },
    { name: 'transfer', history: transfer.history },
  ]);
  const figure = { svg: path.join(outDir, 'compare.svg'), png: path.join(outDir, 'compare.png') };
  await writeFileAtomic(figure.svg, svg);
  await svgToPng(svg, figure.png);

  const scratchSide = side('scratch', scratchRun, scratchSummary, scratchWall, scratch.network.epochSeconds);
  const transferSide = side('transfer', transferRun, transferSummary, transferWall, transfer.history.map((h) => h.seconds));
  const testMetrics = computeMetrics(transfer.test.probs, transfer.test.labels, ds.classes);
  const scratchTest = computeMetrics(scratch.test.probs, scratch.test.labels, ds.classes);
  const report = await writeReport(outDir, {
    title: `${path.basename(ds.root)}: from scratch vs transfer learning`,
    kind: 'compare',
    createdAt: new Date().toISOString(),
    version: VERSION,
    summary: [
      ...datasetRows(transferRun.metrics),
      ['scratch', `${scratchArch.arch.name}: ${scratchSummary.total.toLocaleString('en-US')} params, all trained; ${scratchSide.secondsPerEpoch.toFixed(1)} s per epoch; ${scratchWall.toFixed(1)} s in all`],
      ['transfer', `${backbone.name} frozen + new ${transfer.head.kind} head: ${transferSummary.total.toLocaleString('en-US')} params, ${transferSummary.trainable.toLocaleString('en-US')} trained; ${transferWall.toFixed(1)} s in all`],
      ['hyperparameters (both)', `${o.optimizer ?? 'adam'}, lr ${o.lr ?? 'default'}, batch ${o.batchSize ?? 128}, ${o.epochs ?? 10} epochs, seed ${seed}`],
      ['run folders', `${scratchRun.outDir}, ${transferRun.outDir}`],
      ['tlearn', VERSION],
    ],
    classes: ds.classes,
    classCounts: classCounts(ds),
    samples: sampleImages(split.train, ds.classes, split.seed),
    models: [
      { name: 'scratch', history: scratch.history, test: scratchTest, seconds: scratchWall },
      { name: 'transfer', history: transfer.history, test: testMetrics, seconds: transferWall },
    ],
    primary: { name: 'transfer', metrics: testMetrics, split: 'test' },
    gallery: topLossGallery(transfer.test.probs, transfer.test.labels, transfer.test.paths, ds.classes),
    calibration: transfer.calibration,
  });
  const result: CompareResult = { outDir, summaries: { scratch: scratchSummary, transfer: transferSummary }, scratch: scratchSide, transfer: transferSide, figure, report, runs: { scratch: scratchRun, transfer: transferRun } };
  await writeFileAtomic(
    path.join(outDir, 'compare.json'),
    JSON.stringify(
      {
        tlearnVersion: VERSION,
        createdAt: new Date().toISOString(),
        dataset: { root: ds.root, classes, images: ds.images.length, split: { train: split.train.length, val: split.val.length, test: split.test.length, note: split.note } },
        options: { optimizer: o.optimizer ?? 'adam', lr: o.lr ?? null, batchSize: o.batchSize ?? 128, epochs: o.epochs ?? 10, seed },
        scratch: { ...scratchSide, summary: scratchSummary.text },
        transfer: { ...transferSide, summary: transferSummary.text },
        figure,
        report: report.html,
      },
      null,
      2,
    ),
  );
  return result;
}

async function featureDim(artifacts: LayersModelArtifacts): Promise<number> {
  const shape = buildOnnxGraph(artifacts).kerasOutputShape;
  return Number(shape[shape.length - 1]);
}
