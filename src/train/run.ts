/**
 * One call for the whole run: discover → split → train a model (transfer learning on cached features by
 * default, or a CNN from scratch) → test metrics → a shipped model, with everything in the run folder.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { loadImageFolder, type ImageFolder } from '../data/discover.js';
import { splitDataset, splitToJson, type DatasetSplit } from '../data/split.js';
import { formatSummary, summarizeDataset } from '../data/summary.js';
import { writeFileAtomic } from '../util/fs.js';
import { auditDataset, formatAudit, type DatasetAudit } from '../data/audit.js';
import { ContentHashIndex } from '../data/hash-index.js';
import { featuresRoot } from '../features/cache.js';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import type { EpochLog } from '../engine/fit.js';
import { runScratch } from './modes/scratch.js';
import { runTransfer } from './modes/transfer.js';
import { runFinetune } from './modes/finetune.js';
import { withTta } from './tta.js';
import { checkNetworkOptions } from '../engine/network.js';
import { calibrateOutcome } from './calibrate.js';
import { writeRunFolder, type RunMetrics } from './outcome.js';
import { NETWORK_ONLY_OPTIONS, type ModelOutcome, type TrainMode, type TrainRunOptions } from './types.js';
import type { ReportFiles } from '../report/html.js';

export type { RunMetrics, TrainMode, TrainRunOptions };


export interface TrainRunResult {
  outDir: string;
  metrics: RunMetrics;
  history: EpochLog[];
  /** report.html and the PNG plots next to it. */
  report: ReportFiles;
}

export function timestamp(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, '').replace(/:/g, '-');
}

export interface PreparedData {
  ds: ImageFolder;
  split: DatasetSplit;
  audit: DatasetAudit;
  outDir: string;
  timings: Record<string, number>;
}

/** Discovers and splits the dataset, creates the run folder and writes split.json. */
export async function prepareData(o: TrainRunOptions, log: Logger): Promise<PreparedData> {
  let t = performance.now();
  const ds = await loadImageFolder(o.data, { exclude: o.exclude });
  for (const w of ds.warnings) log.warn(w);
  const discover = (performance.now() - t) / 1000;
  t = performance.now();
  const split = splitDataset(ds, { fractions: o.split, seed: o.seed, mode: o.splitMode });
  for (const [name, part] of Object.entries({ train: split.train, val: split.val, test: split.test })) {
    if (!part.length) throw new Error(`the ${name} split is empty (${ds.images.length} images); use a larger dataset or change --split`);
  }
  const outDir = path.resolve(o.out ?? path.join('runs', timestamp()));
  await fs.mkdir(outDir, { recursive: true });
  await writeFileAtomic(path.join(outDir, 'split.json'), JSON.stringify(splitToJson(ds, split)));
  for (const line of formatSummary(summarizeDataset(ds, split))) log.info(line);
  for (const s of ds.skipped) log.info(`  skipped ${s.path}: ${s.reason}`);
  const splitSeconds = (performance.now() - t) / 1000;
  t = performance.now();
  const audit = await auditDataset(ds, split, await ContentHashIndex.open(path.join(featuresRoot(), 'content-hashes.json')));
  for (const line of formatAudit(audit, ds.root)) log.info(line);
  if (audit.crossSplit) log.warn(`${audit.crossSplit} group${audit.crossSplit > 1 ? 's' : ''} of identical images span the train/val/test splits: test accuracy will be optimistic`);
  return { ds, split, outDir, audit, timings: { discover, split: splitSeconds, audit: (performance.now() - t) / 1000 } };
}

export function runTitle(ds: ImageFolder, o: ModelOutcome): string {
  const what = o.mode === 'transfer' ? `${o.backbone.name} + ${o.head?.kind ?? 'linear'} head` : o.mode === 'scratch' ? `${o.backbone.name} from scratch` : `${o.backbone.name} fine-tuned`;
  return `${path.basename(ds.root)}: ${what}`;
}

/** Refuses recipe options the mode would not use, before anything is read or written. */
export function checkModeOptions(mode: TrainMode, o: TrainRunOptions): void {
  if (mode === 'transfer') {
    const given = NETWORK_ONLY_OPTIONS.filter(([k]) => o[k] !== undefined && o[k] !== false).map(([, flag]) => flag);
    if (given.length) throw new Error(`${given.join(', ')} appl${given.length > 1 ? 'y' : 'ies'} to --mode finetune and scratch (the network trainer), not to transfer learning on cached features`);
  }
  if (mode === 'scratch' && o.bn !== undefined) throw new Error("--bn applies to --mode finetune; from scratch, an architecture's BatchNormalization always trains");
  if (mode !== 'transfer') {
    // the network trainer's checks, with the mode's defaults, before features or a first stage are computed
    checkNetworkOptions({
      ...o,
      schedule: o.schedule ?? (mode === 'finetune' ? 'one-cycle' : 'constant'),
      warmupEpochs: o.warmup,
      batchNorm: { momentum: o.bnMomentum, reestimate: typeof o.bnReestimate === 'number' ? { images: o.bnReestimate } : undefined },
    });
  }
}

export async function trainFromFolder(o: TrainRunOptions): Promise<TrainRunResult> {
  const log = o.logger ?? silentLogger;
  const mode = o.mode ?? 'transfer';
  checkModeOptions(mode, o);
  const { ds, split, outDir, timings, audit } = await prepareData(o, log);
  let outcome: ModelOutcome;
  if (mode === 'transfer') outcome = await runTransfer(split, ds.classes.length, o, log);
  else if (mode === 'scratch') outcome = await runScratch(split, ds.classes.length, o, log);
  else if (mode === 'finetune') outcome = await runFinetune(split, ds.classes.length, { ...o, checkpointDir: path.join(outDir, 'checkpoint') }, log);
  else throw new Error(`unknown mode '${mode as string}'`);
  // the model is final: calibrate it before anything reads its probabilities
  outcome = calibrateOutcome(outcome, log, o.calibrate ?? true);
  if (o.tta) outcome = await withTta(outcome, split, o, log);
  return writeRunFolder(outDir, ds, split, { ...outcome, details: { ...outcome.details, audit } }, timings, runTitle(ds, outcome));
}
