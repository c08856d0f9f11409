/**
 * A shipped classifier (backbone + head) as an int8 model, for `serve --int8` and `export --format onnx --int8`:
 * its ONNX graph's convolutions quantized statically (src/runtime/int8.ts), calibrated on the training images of
 * the run it came from (split.json) or on a folder given with --calibrate. The head stays float.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { findImages } from '../data/discover.js';
import { readSplitFile } from '../data/split-file.js';
import { exists } from '../util/fs.js';
import { sha256 } from '../util/hash.js';
import type { Logger } from '../util/log.js';
import { cachedOnnx, onnxRunner, type InferenceRunner } from '../runtime/inference.js';
import { describeInt8, Int8Error, int8Model, type Int8Model } from '../runtime/int8.js';
import type { LoadedClassifier } from './load.js';

export interface ClassifierInt8Options {
  /** A folder of images (any layout) to calibrate on; default: the training split of the classifier's run. */
  calibrate?: string;
  /** How many of them (spread evenly; default 300). */
  calibrationImages?: number;
  threads?: number;
  logger?: Logger;
}

/** The run folder of a model: <run>/model → <run>; a model folder given as the run folder itself. */
function runDir(c: LoadedClassifier): string {
  return path.basename(c.source) === 'model' ? path.dirname(c.source) : c.source;
}

/** The images to calibrate on: --calibrate's folder, else the training images recorded in the run's split.json. */
export async function calibrationImagesFor(c: LoadedClassifier, o: ClassifierInt8Options): Promise<string[]> {
  if (o.calibrate) {
    const { images } = await findImages(path.resolve(o.calibrate)).catch((e: any) => {
      throw new Int8Error(`--calibrate ${o.calibrate}: ${e.message ?? e}`);
    });
    if (!images.length) throw new Int8Error(`--calibrate ${o.calibrate}: no images found there`);
    return images;
  }
  const file = path.join(c.onnx ? path.dirname(c.source) : runDir(c), 'split.json');
  if (!(await exists(file))) {
    throw new Int8Error(`${c.source}: int8 needs calibration images and there is no run split (${file}) to take the training images from; pass --calibrate <folder of images like the ones it will see>`);
  }
  const split = await readSplitFile(file);
  const images = split.train.map(([rel]) => path.join(split.root, rel));
  const present: string[] = [];
  for (const p of images) if (await exists(p)) present.push(p);
  if (!present.length) throw new Int8Error(`${c.source}: none of the ${images.length} training images recorded in ${file} exist any more (under ${split.root}); pass --calibrate <folder>`);
  return present;
}

/** The number of calibration images its run's features were extracted with (`train --int8 N`), if any. */
async function recordedInt8(c: LoadedClassifier): Promise<number | undefined> {
  try {
    const o = JSON.parse(await fs.readFile(path.join(runDir(c), 'options.json'), 'utf8'));
    return typeof o.options?.int8 === 'number' ? o.options.int8 : undefined;
  } catch {
    return undefined;
  }
}

/** The classifier's float ONNX graph quantized to int8 (cached); by default calibrated like its run's int8 features. */
export async function classifierInt8(c: LoadedClassifier, o: ClassifierInt8Options, floatBytes?: Uint8Array): Promise<Int8Model> {
  const bytes = floatBytes ?? c.onnx ?? (await cachedOnnx(c.artifacts!, c.id));
  const key = floatBytes ? sha256(floatBytes).slice(0, 16) : c.id;
  const m = c.metadata;
  return int8Model(bytes, key, { inputSize: m.inputSize, preprocessing: m.preprocessing as any, resize: m.resize, kernel: m.kernel }, {
    calibration: await calibrationImagesFor(c, o),
    calibrationImages: o.calibrationImages ?? (o.calibrate ? undefined : await recordedInt8(c)),
    threads: o.threads,
    logger: o.logger,
  });
}

/** A runner for the int8 classifier; its backend names what was quantized. */
export async function createInt8ClassifierRunner(c: LoadedClassifier, o: ClassifierInt8Options): Promise<InferenceRunner> {
  const q = await classifierInt8(c, o);
  const r = await onnxRunner(q.bytes, { inputSize: c.metadata.inputSize, threads: o.threads });
  return { backend: `${r.backend}, ${describeInt8(q)}`, outputDim: r.outputDim, run: r.run, close: r.close };
}
