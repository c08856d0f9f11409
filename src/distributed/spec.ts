/** The feature extractor a distributed extraction uses, as the coordinator names it and as a worker loads it. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { loadBackbone } from '../backbones/load.js';
import type { PreprocessMode } from '../backbones/preprocess.js';
import { DEFAULT_BACKBONE } from '../backbones/zoo.js';
import type { ResizeKernel, ResizeMode } from '../image/decode.js';
import { createFeatureExtractor, type FeatureExtractor, type FeatureExtractorOptions } from '../features/extract.js';
import type { Logger } from '../util/log.js';
import type { ExtractorSpec } from './codec.js';

export interface ExtractorChoice {
  /** Zoo name or TF.js layers model folder (default: the zoo's default backbone). */
  backbone?: string;
  preprocessing?: PreprocessMode;
  cutAt?: string;
  resize?: ResizeMode;
  kernel?: ResizeKernel;
}

/** What the user chose, with a local folder made absolute so that workers on a shared filesystem find it. */
export async function resolveSpec(c: ExtractorChoice): Promise<ExtractorSpec> {
  const b = c.backbone ?? DEFAULT_BACKBONE;
  const isLocal = await fs.stat(b).then(
    () => true,
    () => false,
  );
  return { backbone: isLocal ? path.resolve(b) : b, preprocessing: c.preprocessing, cutAt: c.cutAt, resize: c.resize, kernel: c.kernel ?? 'linear' };
}

/**
 * Loads the spec's backbone (or `backbone` instead, e.g. the same model at another path on this machine)
 * exactly as a local `tlearn train` would, and opens a feature extractor on it; it does not use the
 * features store unless `cache` is set.
 */
export async function openSpecExtractor(spec: ExtractorSpec, o: { backbone?: string; threads?: number; logger?: Logger; cache?: boolean; int8?: FeatureExtractorOptions['int8'] } = {}): Promise<FeatureExtractor> {
  const backbone = await loadBackbone(o.backbone ?? spec.backbone, { preprocessing: spec.preprocessing, cutAt: spec.cutAt, logger: o.logger });
  if (spec.resize) backbone.resize = spec.resize;
  return createFeatureExtractor(backbone, { cache: o.cache ?? false, kernel: spec.kernel, threads: o.threads, logger: o.logger, int8: o.int8 });
}
