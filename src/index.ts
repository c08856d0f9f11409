/**
 * tlearn's library API. The CLI is a thin layer over these functions.
 *
 * One call for the common case:
 *   const { metrics } = await trainFromFolder({ data: 'photos/', out: 'runs/first' });
 * and every step on its own when you need it:
 *   loadImageFolder → splitDataset → loadBackbone → createFeatureExtractor → trainHead → computeMetrics
 *   loadClassifier → predictImages;  layersModelToOnnx for export.
 */
export { VERSION } from './version.js';

export { loadImageFolder, findImages, DatasetError } from './data/discover.js';
export type { ImageFolder, LabelledImage, SkippedFile, LoadImageFolderOptions, SplitName } from './data/discover.js';
export { splitDataset, parseFractions, splitToJson, DEFAULT_FRACTIONS } from './data/split.js';
export type { DatasetSplit, SplitOptions, SplitMode, SplitFile } from './data/split.js';
export { decodeImage, decodeRgb, resizeRgb, decodeBound, describeDecoder, ImageDecodeError, RESIZE_MODES } from './image/decode.js';
export type { DecodeOptions, DecodeRgbOptions, ResizeMode, ResizeKernel, RgbImage } from './image/decode.js';
export { resampleRgb } from './image/resample.js';
export { DecodedImageCache } from './image/decoded-cache.js';
export type { DecodedCacheOptions, DecodedCacheStats } from './image/decoded-cache.js';
export { IMAGE_EXTENSIONS, sniffImageFormat } from './image/formats.js';
export { summarizeDataset, formatSummary } from './data/summary.js';
export { checkDataset, formatCheck } from './data/check.js';
export type { CheckOptions, DatasetCheck, ClassCount } from './data/check.js';
export { findLabelIssues, healthSummary, LabelIssuesError, LABEL_QUALITY_SCORES, ISSUE_FILTERS } from './data/label-issues.js';
export type { FindLabelIssuesInput, LabelIssue, LabelIssuesResult, ClassHealth, SwappedPair, LabelQualityScore, IssueFilter } from './data/label-issues.js';
export { stratifiedFolds } from './data/label-issues-folds.js';
export { outlierScores, neighbourProbabilities } from './data/label-issues-neighbours.js';
export type { OutlierScores } from './data/label-issues-neighbours.js';
export { outOfFoldProbabilities } from './engine/out-of-fold.js';
export type { OutOfFoldOptions, OutOfFoldResult } from './engine/out-of-fold.js';
export { nearestNeighbours } from './engine/neighbours.js';
export type { Neighbours } from './engine/neighbours.js';
export { labelIssuesFromFeatures } from './engine/label-issues-features.js';
export type { FeatureLabelIssuesOptions, FeatureLabelIssues } from './engine/label-issues-features.js';
export { labelIssuesForFolder, labelIssuesCsv, formatLabelIssues } from './train/label-issues.js';
export type { FolderLabelIssue, FolderLabelIssues, LabelIssuesForFolderOptions, LabelIssuesProgress, LabelIssueKind } from './train/label-issues.js';
export { auditDataset, formatAudit } from './data/audit.js';
export type { DatasetAudit, DecodedAudit, NearDuplicate, AuditOptions } from './data/audit.js';
export { probeImage, hammingDistance } from './image/probe.js';
export type { ImageProbe } from './image/probe.js';
export { FolderWalker } from './data/walk.js';
export { TRANSPARENT_BACKGROUND } from './image/decode.js';
export type { DatasetSummary } from './data/summary.js';

export { loadBackbone, backboneId, BackboneError } from './backbones/load.js';
export type { Backbone, LoadBackboneOptions } from './backbones/load.js';
export { ZOO, DEFAULT_BACKBONE, findZooEntry } from './backbones/zoo.js';
export type { ZooEntry, PublishedHash } from './backbones/zoo.js';
export { ensureZooModel, importModel, zooStatus, BackboneUnavailableError, CacheIntegrityError } from './backbones/model-cache.js';
export { downloadFile, DownloadError, HashMismatchError, mirrored, type DownloadOptions, type DownloadResult, type ExpectedHash } from './util/download.js';
export { REGISTRY as DATASETS, loadRegistry, findEntry as findDatasetEntry, isDatasetName, RegistryError } from './datasets/registry.js';
export type { DatasetEntry, ArchiveFormat } from './datasets/registry.js';
export { getDataset, importDataset, removeDataset, datasetsStatus, readDatasetRecord, datasetsDir, DatasetUnavailableError, DatasetImportError } from './datasets/store.js';
export type { DatasetRecord, DatasetStatus, ImportOptions } from './datasets/store.js';
export { resolveDataArg, expandExclude } from './datasets/resolve.js';
export type { ResolvedData, ResolveOptions } from './datasets/resolve.js';
export { extractArchive, sniffArchive, UnsafeArchiveError, ArchiveError } from './datasets/extract.js';
export type { ExtractArchiveOptions, ExtractArchiveResult } from './datasets/extract.js';
export { readLayersModel, writeLayersModel, decodeWeights, encodeWeights, ModelFormatError } from './backbones/layers-model.js';
export type { LayersModelArtifacts, WeightSpec, NamedWeight, KerasTopology } from './backbones/layers-model.js';
export { cutAndPool, teachableMachineBackbone, countParams } from './backbones/surgery.js';
export { preprocess, preprocessInto, PREPROCESS_MODES, PREPROCESS_DESCRIPTIONS } from './backbones/preprocess.js';
export type { PreprocessMode } from './backbones/preprocess.js';

export { createRunner, onnxRunner, cachedOnnx } from './runtime/inference.js';
export type { InferenceRunner, RunnerOptions } from './runtime/inference.js';
export { streamImages } from './runtime/image-stream.js';
export { getTf, tfBackendName } from './runtime/tfjs.js';

export { createFeatureExtractor, extractFeatures } from './features/extract.js';
export type { FeatureExtractor, FeatureSet, FeatureExtractorOptions, ExtractOptions, ExtractProgress } from './features/extract.js';
export { FeatureCache, clearFeaturesCache, featuresCacheUsage, extractorKey } from './features/cache.js';
export type { CacheUsage, ExtractorKeyParts } from './features/cache.js';
export { FeatureStore } from './features/store.js';
export type { StoreEntry, StoreUsage } from './features/store.js';

export { trainHead, predictHead, autoClassWeights, TrainingError } from './engine/fit.js';
export type { TrainOptions, TrainedHead, EpochLog, LabelledFeatures } from './engine/fit.js';
export { buildHead, headSpec, HEADS } from './engine/head.js';
export type { HeadKind, HeadOptions, HeadSpec } from './engine/head.js';
export { OPTIMIZERS, DEFAULT_LR } from './engine/optimizers.js';
export type { OptimizerName } from './engine/optimizers.js';
export { trainFromFolder, prepareData } from './train/run.js';
export { RunEvents } from './engine/events.js';
export type { TrainingEvent, TrainingEventType, TrainingListener, TrainingStage } from './engine/events.js';
export { formatTrainingEvent, renderTrainingEvents } from './engine/event-render.js';
export type { RenderOptions } from './engine/event-render.js';
export { compareOnFolder, compareFigure } from './train/compare.js';
export type { CompareResult, CompareSide } from './train/compare.js';
export { trainNetwork, defaultMicroBatch, scheduleScale } from './engine/network.js';
export type { NetworkTrainOptions, TrainedNetwork, LrSchedule, BatchNormOptions, NetworkCheckpointOptions, CheckpointPart } from './engine/network.js';
export { readCheckpoint, writeCheckpoint, encodeCheckpoint, decodeCheckpoint, CheckpointError, CHECKPOINT_VERSION } from './engine/checkpoint.js';
export type { Checkpoint } from './engine/checkpoint.js';
export { OnnxTrainer } from './engine/onnx-trainer.js';
export type { OnnxTrainerOptions } from './engine/onnx-trainer.js';
export { TrainingRecipe, RecipeError } from './engine/recipe.js';
export type { RecipeOptions, RecipeState } from './engine/recipe.js';
export { WeightEma, WeightSwa } from './engine/averaging.js';
export type { EmaState, SwaState } from './engine/averaging.js';
export { mixBatch, sampleBeta } from './engine/mixing.js';
export type { MixOptions, MixedTargets, MixedBatch } from './engine/mixing.js';
export { fitTemperature, applyTemperature, foldTemperature, finalLogitsLayer, CalibrationError, TEMPERATURE_RANGE } from './engine/calibration.js';
export type { TemperatureFit } from './engine/calibration.js';
export { calibrateOutcome, MIN_CALIBRATION_IMAGES } from './train/calibrate.js';
export type { CalibrationSummary, CalibrationPoint, ModelOutcome, SplitPredictions } from './train/types.js';
export { buildTrainingGraph } from './engine/grad/builder.js';
export { ARCHITECTURES, buildArchitecture } from './engine/architectures.js';
export { summarizeTopology, formatSummary as formatModelSummary } from './models/summary.js';
export type { ModelSummary, SummaryRow } from './models/summary.js';
export { buildOnnxGraph } from './onnx/convert.js';
export type { TrainRunOptions, TrainRunResult, RunMetrics, RunRequest } from './train/run.js';
export { readRecordedRun, OPTIONS_FILE } from './train/run-folder.js';
export type { RecordedRun } from './train/run-folder.js';

export { computeMetrics, argmaxRows } from './evaluate/metrics.js';
export { evaluateFolder, EvaluationError } from './evaluate/run.js';
export type { EvaluateOptions, EvaluationResult } from './evaluate/run.js';
export { writeReport, topLossGallery, predictionsCsv } from './report/html.js';
export type { ReportInput, ReportFiles, ReportModel, GalleryItem } from './report/html.js';
export { lineChart, barChart, confusionHeatmap, reliabilityDiagram, sideBySide } from './report/svg.js';
export type { Metrics, ClassMetrics, ConfusedPair, ReliabilityBin } from './evaluate/metrics.js';

export { composeClassifier } from './classifier/compose.js';
export { makeMetadata } from './classifier/metadata.js';
export type { ClassifierMetadata } from './classifier/metadata.js';
export { loadClassifier, ClassifierLoadError } from './classifier/load.js';
export type { LoadedClassifier } from './classifier/load.js';
export { predictImages, expandInputs, topK } from './classifier/predict.js';
export type { Prediction, PredictResult, PredictOptions, LabelProbability } from './classifier/predict.js';

export { layersModelToOnnx, SUPPORTED_LAYERS, UnsupportedModelError } from './onnx/convert.js';
export { exportClassifier, onnxMetadataPath, writeOnnxClassifier, EXPORT_FORMATS, ExportError } from './export/export.js';
export { exportWeb, ORT_WEB_FILES } from './export/web.js';
export type { WebExportResult } from './export/web.js';
export type { ExportFormat, ExportOptions, ExportResult } from './export/export.js';
export type { OnnxExport, OnnxExportOptions } from './onnx/convert.js';

export { chooseThreshold, rejectionStats, describeRejection, DEFAULT_THRESHOLD_RULE } from './classifier/threshold.js';
export type { OpenSetThreshold, RejectionStats, ThresholdRule } from './classifier/threshold.js';
export { effectiveThreshold, readProbabilities } from './classifier/predict.js';

export { createServer, startServer, checkExposure, SERVE_DEFAULTS, ServeConfigError } from './serve/server.js';
export type { ServeOptions, RunningServer, ModelsInput } from './serve/server.js';
export { loadServedModels, parseModelSpec, checkModelSpecs, defaultModelName, ModelSpecError } from './serve/models.js';
export type { ModelSpec, ModelCard, ServedModel } from './serve/models.js';
export { Batcher } from './serve/batcher.js';
export type { BatcherOptions } from './serve/batcher.js';
export { HttpError } from './serve/errors.js';
export { createStudioServer, STUDIO_PLUGINS, STATE_FILES, projectStateDir, studioHome, readRuns, findRun } from './studio/index.js';
export type { StudioOptions, StudioPlugin, StudioServer, StudioContext, StudioJobs, StudioProject, RunEntry, RunStatus, ActionSummary } from './studio/index.js';

export { Rng } from './util/rng.js';
export { createLogger, silentLogger } from './util/log.js';
export type { Logger, Progress } from './util/log.js';
export { tlearnHome } from './util/home.js';
export { InterruptedError, requestStop } from './util/interrupt.js';
export { findTempFiles, sweepTempFiles, tempPath } from './util/tempfiles.js';
export type { TempEntry } from './util/tempfiles.js';
export { LockError } from './util/lock.js';

export { extractViaQueue } from './distributed/coordinator.js';
export type { QueueExtractOptions, QueueExtractResult, VectorStore, JobFailure } from './distributed/coordinator.js';
export { startExtractionWorker } from './distributed/worker.js';
export type { ExtractionWorker, ExtractionWorkerOptions, WorkerStats } from './distributed/worker.js';
export { encodeVector, decodeVector, parseJob, parseResult, CodecError } from './distributed/codec.js';
export type { ExtractJob, ExtractJobResult, ExtractorSpec, ItemResult } from './distributed/codec.js';
export { checkRedisUrl, QueueConnectionError } from './distributed/connection.js';
export { queueName } from './distributed/names.js';
export { readSource, readSourceList, parsePathMap, SourceListError } from './distributed/sources.js';
export type { PathMap } from './distributed/sources.js';
