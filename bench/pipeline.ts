/**
 * Forward passes and the feature pipeline: raw onnxruntime on a pre-decoded batch, the pipeline from JPEG files,
 * tfjs for reference, and the decoders alone (each variant's core-ms, a sharp-only pipeline among them for
 * comparison). The retired legacy decoder's pipeline rows stay in BENCHMARKS.md with their date and commit.
 */
import { promises as fs } from 'node:fs';
import sharp from 'sharp';
import { backboneLayers, type Backbone } from '../src/backbones/load.js';
import { preprocessInto } from '../src/backbones/preprocess.js';
import { decodeImage, describeDecoder, openImage, toRgb } from '../src/image/decode.js';
import { decodeResizedBySharp } from '../src/image/sharp-resize.js';
import { decodeJpegTurbo } from '../src/image/jpeg-turbo.js';
import { resampleRgb } from '../src/image/resample.js';
import type { RgbImage } from '../src/image/rgb.js';
import { createRunner } from '../src/runtime/inference.js';
import { streamImages } from '../src/runtime/image-stream.js';
import { coreMs, log, results, rows } from './common.js';

async function timeRuns(seconds: number, fn: () => Promise<number>): Promise<{ perSecond: number; coreMs: number }> {
  await fn();
  let n = 0;
  const c0 = process.cpuUsage();
  const t = performance.now();
  while (performance.now() - t < seconds * 1000) n += await fn();
  return { perSecond: n / ((performance.now() - t) / 1000), coreMs: coreMs(c0, n) };
}

/** `fn` over every item with 8 in flight: images per second and core-ms per image. */
async function throughput<T>(items: T[], fn: (item: T) => Promise<unknown>): Promise<{ perSecond: number; coreMs: number }> {
  let i = 0;
  const c0 = process.cpuUsage();
  const t = performance.now();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
  return { perSecond: items.length / ((performance.now() - t) / 1000), coreMs: coreMs(c0, items.length) };
}

export async function benchBackbone(label: string, bb: Backbone, files: string[], quick: boolean, main: boolean): Promise<void> {
  const [h, w] = bb.inputSize;
  const B = 32;
  const runner = await createRunner(backboneLayers(bb, 'the pipeline benchmark'), { inputSize: bb.inputSize, cacheKey: bb.id });
  const x = new Float32Array(B * h * w * 3);
  const rgb0 = await decodeImage(files[0]!, { width: w, height: h });
  for (let k = 0; k < B; k++) preprocessInto(rgb0, bb.preprocessing, x, k * h * w * 3);
  // raw forward passes measured before and after each pipeline run: other processes' load changes over minutes
  const rawRun = async () => timeRuns(quick ? 2 : 6, async () => (await runner.run(x, B), B));
  const pipeline = async () => {
      const before = await rawRun();
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const r = await streamImages(files, runner, { inputSize: bb.inputSize, preprocessing: bb.preprocessing, resize: bb.resize, batchSize: B });
      const perSecond = r.computed / ((performance.now() - t0) / 1000);
      const cpu = coreMs(c0, r.computed);
      const after = await rawRun();
      const raw = { perSecond: (before.perSecond + after.perSecond) / 2, coreMs: (before.coreMs + after.coreMs) / 2 };
      log(`${label}: pipeline ${perSecond.toFixed(0)} img/s over ${files.length} files; raw ${before.perSecond.toFixed(0)} / ${after.perSecond.toFixed(0)} img/s before / after`);
      return { perSecond, coreMs: cpu, raw };
    };
  const after = await pipeline();
  const raw = after.raw;
  await runner.close();
  process.env.TLEARN_RUNTIME = 'tfjs';
  const tfr = await createRunner(backboneLayers(bb, 'the pipeline benchmark'), { inputSize: bb.inputSize });
  delete process.env.TLEARN_RUNTIME;
  const xb = x.subarray(0, 8 * h * w * 3);
  const tfjs = await timeRuns(quick ? 2 : 6, async () => (await tfr.run(xb, 8), 8));
  await tfr.close();
  const share = (p: typeof after) => p.perSecond / p.raw.perSecond;
  rows.push(
    { what: `${label}: (a) raw onnxruntime, pre-decoded batch of ${B}`, value: `${raw.perSecond.toFixed(0)} img/s`, note: `${(1000 / raw.perSecond).toFixed(2)} ms/img; CPU ${raw.coreMs.toFixed(2)} core-ms/img (mean of the runs just before and after (b))` },
    { what: `${label}: (b) tlearn feature pipeline from JPEG files (${files.length} Caltech-97 images, no cache)`, value: `${after.perSecond.toFixed(0)} img/s`, note: `**${(100 * share(after)).toFixed(0)}% of (a)**; CPU ${after.coreMs.toFixed(2)} core-ms/img, so at most ${((100 * raw.coreMs) / after.coreMs).toFixed(0)}% of (a) when every core is busy; decoder: ${describeDecoder()}` },
    { what: `${label}: (c) ${tfr.backend}, batch of 8`, value: `${tfjs.perSecond.toFixed(1)} img/s`, note: `(a) is ${(raw.perSecond / tfjs.perSecond).toFixed(0)}x faster` },
  );
  if (main) {
    results.rawImagesPerSecond = Math.round(raw.perSecond);
    results.pipelineImagesPerSecond = Math.round(after.perSecond);
    results.pipelineShareOfRaw = Number(share(after).toFixed(3));
    results.pipelineCoreMsPerImage = Number(after.coreMs.toFixed(3));
    results.rawCoreMsPerImage = Number(raw.coreMs.toFixed(3));
  }
}

/** Each decoder variant alone on the same Caltech images: core-ms per image (all threads), 8 decodes in flight. */
export async function benchDecoders(files: string[]): Promise<void> {
  const target = { width: 224, height: 224 };
  const bytes = await Promise.all(files.map((f) => fs.readFile(f)));
  const variants: Array<[string, (i: number) => Promise<unknown>]> = [
    ['sharp: one sharp pipeline per image (decode, orient, resize, colour; the retired legacy decoder)', (i) => decodeResizedBySharp(bytes[i]!, target, files[i]!)],
    ['new: libjpeg-turbo decode + WebAssembly resize (what tlearn uses)', (i) => decodeImage(bytes[i]!, target, files[i]!)],
    ['sharp decode only (orient, colour, no resize) + WebAssembly resize', async (i) => {
      const { data, info } = await toRgb(openImage(bytes[i]!)).toBuffer({ resolveWithObject: true });
      return resampleRgb({ data, width: info.width, height: info.height }, 224, 224);
    }],
    ['libjpeg-turbo decode alone', (i) => decodeJpegTurbo(bytes[i]!)],
    ['sharp decode alone', (i) => sharp(bytes[i]!).raw().toBuffer()],
  ];
  const decoded: RgbImage[] = await Promise.all(bytes.map((b) => decodeJpegTurbo(b)));
  const idx = files.map((_, i) => i);
  for (const [name, fn] of variants) {
    const r = await throughput(idx, fn);
    log(`decode: ${name}: ${r.coreMs.toFixed(2)} core-ms/img`);
    rows.push({ what: `decode variant: ${name}`, value: `${r.coreMs.toFixed(2)} core-ms/img`, note: `${r.perSecond.toFixed(0)} img/s with 8 in flight, ${files.length} Caltech images to 224x224` });
    if (name.startsWith('sharp:')) results.decodeCoreMsPerImageBefore = Number(r.coreMs.toFixed(3));
    if (name.startsWith('new')) results.decodeCoreMsPerImage = Number(r.coreMs.toFixed(3));
  }
  const c0 = process.cpuUsage();
  for (const d of decoded) resampleRgb(d, 224, 224);
  const resizeMs = coreMs(c0, decoded.length);
  rows.push({ what: 'decode variant: WebAssembly resize alone (decoded Caltech image to 224x224, squash, linear)', value: `${resizeMs.toFixed(2)} core-ms/img`, note: 'one thread' });
}
