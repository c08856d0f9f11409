/**
 * The types every training mode and the run share: the options of a run (what `tlearn train` was asked)
 * and what a mode hands back (a model, its predictions on val and test, its history). `run.ts` imports the
 * modes and the modes import these, so nothing here imports either.
 */
import type { LayersModelArtifacts } from '../backbones/layers-model.js';
import type { PreprocessMode } from '../backbones/preprocess.js';
import type { ClassifierMetadata } from '../classifier/metadata.js';
import type { AugmentOptions } from '../image/augment.js';
import type { ResizeKernel, ResizeMode } from '../image/decode.js';
import type { SkippedFile } from '../data/discover.js';
import type { SplitMode } from '../data/split.js';
import type { EpochLog } from '../engine/fit.js';
import type { HeadKind } from '../engine/head.js';
import type { LrSchedule } from '../engine/network.js';
import type { OptimizerName } from '../engine/optimizers.js';
import type { Logger } from '../util/log.js';
import type { TrainingListener } from '../engine/events.js';

export type TrainMode = 'transfer' | 'scratch' | 'finetune';
export const TRAIN_MODES: TrainMode[] = ['transfer', 'scratch', 'finetune'];

/** Options that only the network trainer (scratch, fine-tune) uses, with their flags. */
export const NETWORK_ONLY_OPTIONS: Array<[keyof TrainRunOptions, string]> = [
  ['warmup', '--warmup'],
  ['progressive', '--progressive'],
  ['bn', '--bn'],
  ['bnMomentum', '--bn-momentum'],
  ['bnReestimate', '--bn-reestimate'],
  ['ema', '--ema'],
  ['swa', '--swa'],
  ['mixup', '--mixup'],
  ['cutmix', '--cutmix'],
];

/** Predictions of a model for one split: rows of probabilities for the images that could be read. */
export interface SplitPredictions {
  probs: Float32Array;
  labels: Int32Array;
  paths: string[];
}

export type { CalibrationPoint, CalibrationSummary } from '../engine/calibration.js';
import type { CalibrationSummary } from '../engine/calibration.js';

export interface ModelOutcome {
  mode: TrainMode;
  /** The whole classifier as a TF.js layers model; with `featureOnnx`, the head alone (it takes the features). */
  model: LayersModelArtifacts;
  /** A .tflite backbone's feature extractor as ONNX: the classifier is this, then `model` (see train/classifier-onnx.ts). */
  featureOnnx?: Uint8Array;
  inputSize: [number, number];
  preprocessing: PreprocessMode;
  resize: ResizeMode;
  kernel: ResizeKernel;
  backbone: ClassifierMetadata['backbone'];
  head?: ClassifierMetadata['head'];
  history: EpochLog[];
  val: SplitPredictions;
  test: SplitPredictions;
  /** Images that could not be read while training or evaluating. */
  failed: SkippedFile[];
  /** Rows for the report's run summary describing the model and how it was trained. */
  describe: Array<[string, string]>;
  /** Mode-specific details for metrics.json (backbone, head, training options...). */
  details: Record<string, unknown>;
  /** Seconds per stage (features, train, evaluate...). */
  timings: Record<string, number>;
  /** Set by the calibration step (train/calibrate.ts) once the model is final. */
  calibration?: CalibrationSummary;
}

export interface TrainRunOptions {
  /** Folder of class folders (or train/ val/ [test/] folders of class folders). */
  data: string;
  exclude?: string[];
  split?: [number, number, number];
  seed?: number;
  splitMode?: SplitMode;
  /** transfer (default): frozen backbone + new head; scratch: a small CNN trained from scratch. */
  mode?: TrainMode;
  /** Zoo name or TF.js layers model folder (default mobilenet_v2_0.35). */
  backbone?: string;
  preprocessing?: PreprocessMode;
  resize?: ResizeMode;
  kernel?: ResizeKernel;
  cutAt?: string;
  /** A quantized .tflite backbone: run it dequantized to float (default: integer kernels). */
  dequantize?: boolean;
  /** A uint8 .tflite backbone: keep its weights exactly, zero points and all (slower; default: requantized to symmetric int8 per channel, exact in all but a few channels). */
  exactWeights?: boolean;
  /**
   * Transfer learning: extract features with an int8 version of the backbone (static quantization calibrated
   * on this many training images, or 300 when true). Its features, and their cache entries, are its own.
   */
  int8?: boolean | number;
  head?: HeadKind;
  hidden?: number;
  dropout?: number;
  /** scratch: the architecture (default notebook-cnn) and input size (default 224x224). */
  arch?: string;
  inputSize?: [number, number];
  /** scratch/fine-tune: samples per onnxruntime run. */
  microBatch?: number;
  /** fine-tune: the backbone's top groups to train (a number), a layer name (that layer up), or 'all'. */
  unfreeze?: string | number;
  /** fine-tune: epochs and learning rate of the first stage (head on cached features). */
  headEpochs?: number;
  headLr?: number;
  /** scratch/fine-tune: data augmentation. */
  augment?: AugmentOptions;
  /** Test-time augmentation for the final test metrics (flips and centre crops averaged). */
  tta?: boolean;
  /** Fit a temperature on the validation split and fold it into the model (default true). */
  calibrate?: boolean;
  /** A Keras .h5 weights file for the zoo backbone (instead of the cache). */
  weights?: string;
  schedule?: LrSchedule;
  /** scratch/fine-tune: progressive resizing, the first epochs at these smaller sizes ([height, width]), then the model's own. */
  progressive?: Array<[number, number]>;
  /** scratch/fine-tune: linear learning-rate warm-up over this many epochs (not with one-cycle). */
  warmup?: number;
  /**
   * fine-tune: the unfrozen blocks' BatchNormalization: 'frozen' (default) keeps it in inference mode with its
   * ImageNet statistics; 'train' trains gamma/beta and normalises with batch statistics (per micro-batch),
   * updating the moving statistics with a momentum. (From scratch, an architecture's BatchNormalization always trains.)
   */
  bn?: 'frozen' | 'train';
  /** Momentum of the moving statistics of training-mode BatchNormalization (default: each layer's own). */
  bnMomentum?: number;
  /** After training, re-estimate the BatchNormalization statistics of the trained part on this many training images (true = all). */
  bnReestimate?: boolean | number;
  /** scratch/fine-tune: exponential moving average of the weights with this decay (e.g. 0.999). */
  ema?: number;
  /** scratch/fine-tune: stochastic weight averaging over the last N epochs (kept if it validates better). */
  swa?: number;
  /** scratch/fine-tune: mixup with Beta(alpha, alpha) (e.g. 0.2); 0 = off. */
  mixup?: number;
  /** scratch/fine-tune: CutMix with Beta(alpha, alpha) (e.g. 1.0); 0 = off. With --mixup, one or the other per batch. */
  cutmix?: number;
  optimizer?: OptimizerName;
  lr?: number;
  momentum?: number;
  epochs?: number;
  batchSize?: number;
  weightDecay?: number;
  labelSmoothing?: number;
  classWeights?: 'auto' | 'none';
  patience?: number;
  /** Which validation number picks the best epoch and drives early stopping (default val_loss). */
  monitor?: 'val_loss' | 'val_acc';
  /** A list of files (the CSV of `check --labels --csv`, or one path per line) left out of train and val; never of test. */
  excludeFiles?: string;
  /** Run `check --labels` first and leave the flagged images out of train and val (never of test). */
  dropLabelIssues?: boolean;
  /** Run folder (default runs/<timestamp>). */
  out?: string;
  /** Use the features cache (default true). */
  cache?: boolean;
  threads?: number;
  /** Draws the run on this logger as the command line does (progress bars and lines); see also onEvent. */
  logger?: Logger;
  /**
   * The run's events, whatever the mode: run-start, stages, extract/batch progress, epochs, checkpoints,
   * calibration, evaluation, then done, failed or cancelled (engine/events.ts).
   */
  onEvent?: TrainingListener;
  /**
   * Stops the run at its next safe point, within one batch: scratch and fine-tune write their checkpoint; every
   * mode leaves a run folder that `{ resume: outDir }` completes. The promise rejects with InterruptedError.
   */
  signal?: AbortSignal;
  /** Train even when the data check finds label conflicts or symbolic link loops. */
  force?: boolean;
  /** Continue the run in this folder from its last checkpoint, with its recorded options and split. */
  resume?: string;
  /** Repeat the run in this folder: its recorded options (those given here override them) on the data as it is now. */
  from?: string;
  /** Where scratch/fine-tune training keeps its resumable state (set by the run). */
  checkpoint?: { file: string; resume: boolean };
}

/** What trainFromFolder and compareOnFolder accept: full options, or a recorded run to resume or repeat. */
export type RunRequest = TrainRunOptions | (Partial<TrainRunOptions> & ({ resume: string } | { from: string }));
