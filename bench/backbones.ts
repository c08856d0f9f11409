/**
 * npm run bench:backbones: a table to choose a backbone from. For every backbone available on this machine
 * (the ../shared copies, every zoo entry in the weights cache, and any other row source registered below), float
 * and int8: parameters, model size, extraction speed, and transfer-learning test accuracy on Caltech-97
 * (--exclude notebook, seed 42) and ants/bees (its own val/ folder as the test split), all in one run so the
 * speed ratios compare like with like. Writes the bench-backbones section of BENCHMARKS.md.
 *
 *   npm run bench:backbones                       everything available
 *   npm run bench:backbones -- --only v1,v2       rows whose name contains one of these
 *   npm run bench:backbones -- --no-accuracy      speed and size only (minutes instead of tens of minutes), written
 *                                                 to its own section (bench-backbones-speed), the table with the
 *                                                 accuracies kept as it was
 *   npm run bench:backbones -- --speed-images 300 images per extraction-speed measurement (default 621)
 *   npm run bench:backbones -- --profile          onnxruntime's profiler instead: time per operator type, float vs
 *                                                 int8 (depthwise convolutions apart), bench-backbones-profile section
 *
 * Extraction speed: the same Caltech-97 JPEGs (every 10th) through tlearn's feature pipeline without the cache
 * (read, hash, decode, resize + preprocess, forward pass), float and int8 alternately, three times each; the
 * median images/s is reported. On a shared machine the load changes during a run: read the load averages printed
 * with the table, and the ratios more than the absolute numbers.
 *
 * Fine-tuned accuracy is not measured here (12-14 minutes per run on 2 cores); ACCURACY.md has those runs.
 */
import { existsSync, promises as fs, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { backboneLayers, loadBackbone, type Backbone } from '../src/backbones/load.js';
import { importModel, zooStatus } from '../src/backbones/model-cache.js';
import { backboneRunner, createFeatureExtractor, tfliteFeatureOnnx, type FeatureExtractor } from '../src/features/extract.js';
import { cachedOnnx, onnxRunner, type InferenceRunner } from '../src/runtime/inference.js';
import { trainFromFolder } from '../src/train/run.js';
import { tlearnHome } from '../src/util/home.js';
import { silentLogger } from '../src/util/log.js';
import { CALTECH, EXCLUDE, MOBILENET, SHARED, log, machine, writeBenchSection } from './report.js';

const args = process.argv.slice(2);
const argValue = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const ONLY = argValue('--only')?.split(',');
const ACCURACY = !args.includes('--no-accuracy');
const SPEED_IMAGES = Number(argValue('--speed-images') ?? 621);
const HYMENOPTERA = path.join(SHARED, 'datasets/hymenoptera_data');
const V1_SHARED = path.join(SHARED, 'models/mobilenet_v1_0.75_224_imagenet');
const TFLITE_SHARED = path.join(SHARED, 'models/tflite');

/**
 * A backbone the bench can measure, as two rows: float and integer. For tlearn's float backbones the integer row
 * is our int8 quantization (`--int8`); for a quantized .tflite model it is the file's own integer graph, and the
 * float row the same model dequantized (`--dequantize`).
 */
export interface RowSource {
  /** Short name for the table. */
  name: string;
  /** Where it comes from, in words. */
  origin: string;
  /** `--backbone` value (and `--cut-at`) a user would pass for the same thing. */
  flags: string[];
  load(): Promise<Backbone>;
  /** Whether an int8 row is measured too (our quantizer applies to float backbones). */
  int8: boolean;
  /** A quantized .tflite model: `load()` gives its integer graph, this its dequantized float graph. */
  tfliteFloat?: () => Promise<Backbone>;
}

async function sharedSources(): Promise<RowSource[]> {
  const out: RowSource[] = [];
  if (existsSync(MOBILENET)) out.push({ name: 'MobileNetV2-0.35', origin: '../shared TF.js copy', flags: ['--backbone', MOBILENET], load: () => loadBackbone(MOBILENET), int8: true });
  if (existsSync(V1_SHARED)) {
    // as a user without internet gets it: imported once into the zoo cache, then used by name
    if (!(await zooStatus()).find((s) => s.entry.name === 'mobilenet_v1_0.75')?.cached) await importModel(V1_SHARED, 'mobilenet_v1_0.75');
    out.push({ name: 'MobileNet-v1-0.75', origin: '../shared TF.js copy, imported as zoo mobilenet_v1_0.75', flags: ['--backbone', 'mobilenet_v1_0.75'], load: () => loadBackbone('mobilenet_v1_0.75'), int8: true });
  }
  return out;
}

/** Every other zoo entry whose weights are in the cache. */
async function zooSources(taken: Set<string>): Promise<RowSource[]> {
  return (await zooStatus())
    .filter((s) => s.cached && !taken.has(s.entry.name))
    .map((s) => ({ name: s.entry.name, origin: `zoo (${s.record?.origin ?? 'cached'})`, flags: ['--backbone', s.entry.name], load: () => loadBackbone(s.entry.name), int8: true }));
}

/** The shared quantized .tflite models: their integer graph (as tlearn runs them) against the same model dequantized. */
async function tfliteSources(): Promise<RowSource[]> {
  const files = [['MobileNetV2-1.0 TFLite uint8', 'mobilenet_v2_1.0_224_quant.tflite'], ['MobileNetV2-1.0 TFLite int8', 'tf2_mobilenet_v2_1.0_224_ptq.tflite']];
  return files
    .map(([name, f]) => [name!, path.join(TFLITE_SHARED, f!)] as const)
    .filter(([, file]) => existsSync(file))
    .map(([name, file]) => ({ name, origin: '../shared TFLite file', flags: ['--backbone', file], load: () => loadBackbone(file), int8: false, tfliteFloat: () => loadBackbone(file, { tfliteForm: 'float' }) }));
}

/** Row sources beyond tlearn's own float backbones. */
const EXTRA_SOURCES: Array<() => Promise<RowSource[]>> = [tfliteSources];

interface Measured {
  name: string;
  variant: 'float' | 'int8';
  /** Forward passes only (no reading or decoding): images/s on a synthetic batch of 32, median of 5. */
  forwardPerSec: number;
  origin: string;
  flags: string[];
  params: number;
  dim: number;
  modelBytes: number;
  imgPerSec: number[];
  caltech?: { val: number; test: number; seconds: number };
  antsbees?: { val: number; test: number; seconds: number };
  note?: string;
}

function caltechImages(): string[] {
  const ex = new Set(EXCLUDE.split(','));
  const all: string[] = [];
  for (const c of readdirSync(CALTECH).sort()) if (!ex.has(c)) for (const f of readdirSync(path.join(CALTECH, c)).sort()) all.push(path.join(CALTECH, c, f));
  return all;
}

/** The float and integer extractors of a row source, with their ONNX sizes, and the backbone of the float row. */
async function extractorPair(src: RowSource, bb: Backbone, calib: string[]): Promise<{ fl: FeatureExtractor; q: FeatureExtractor; floatBytes: number; int8Bytes: number; floatBackbone: Backbone }> {
  if (src.tfliteFloat) {
    const fb = await src.tfliteFloat();
    const size = (b: Backbone) => tfliteFeatureOnnx(b.tflite!).length;
    return { fl: await createFeatureExtractor(fb, { cache: false }), q: await createFeatureExtractor(bb, { cache: false }), floatBytes: size(fb), int8Bytes: size(bb), floatBackbone: fb };
  }
  const q = await createFeatureExtractor(bb, { cache: false, int8: { calibration: calib } });
  return { fl: await createFeatureExtractor(bb, { cache: false }), q, floatBytes: (await cachedOnnx(backboneLayers(bb, 'int8'), bb.id)).length, int8Bytes: q.int8!.bytes.length, floatBackbone: bb };
}

/** Forward passes alone, float and integer alternately: images/s on a synthetic batch of 32, median of 5. */
async function forwardSpeed(floatBackbone: Backbone, bb: Backbone, int8Bytes: Uint8Array | undefined): Promise<{ float: number; int8: number }> {
  const fr = await backboneRunner(floatBackbone);
  const qr = int8Bytes ? await onnxRunner(int8Bytes, { inputSize: bb.inputSize }) : await backboneRunner(bb);
  const B = 32;
  const [h, w] = bb.inputSize;
  const x = Float32Array.from({ length: B * h * w * 3 }, (_, i) => ((i * 7919) % 255) / 127.5 - 1);
  const t: Record<'float' | 'int8', number[]> = { float: [], int8: [] };
  try {
    await fr.run(x, B);
    await qr.run(x, B);
    for (let r = 0; r < 5; r++) {
      for (const [k, runner] of (r % 2 ? [['int8', qr], ['float', fr]] : [['float', fr], ['int8', qr]]) as Array<['float' | 'int8', InferenceRunner]>) {
        const t0 = performance.now();
        await runner.run(x, B);
        t[k].push(B / ((performance.now() - t0) / 1000));
      }
    }
  } finally {
    await fr.close();
    await qr.close();
  }
  return { float: median(t.float), int8: median(t.int8) };
}

/** Calibration images for the speed rows: Caltech-97 images not in the speed sample (accuracy rows calibrate on their own training split). */
async function speed(src: RowSource, bb: Backbone, images: string[], calib: string[], runs: number): Promise<{ float: number[]; int8: number[]; floatBytes: number; int8Bytes: number; dim: number; forward: { float: number; int8: number } }> {
  const { fl, q, floatBytes, int8Bytes, floatBackbone } = await extractorPair(src, bb, calib);
  const out = { float: [] as number[], int8: [] as number[], floatBytes, int8Bytes, dim: fl.dim, forward: { float: 0, int8: 0 } };
  try {
    await fl.extract(images.slice(0, 32));
    await q.extract(images.slice(0, 32));
    for (let r = 0; r < runs; r++) {
      for (const [k, fx] of [['float', fl], ['int8', q]] as const) {
        const s = await fx.extract(images);
        out[k].push(s.computed / s.seconds);
        log(`  ${bb.name} ${k}: ${(s.computed / s.seconds).toFixed(1)} img/s (load ${os.loadavg()[0]!.toFixed(1)})`);
      }
    }
  } finally {
    await fl.close();
    await q.close();
  }
  out.forward = await forwardSpeed(floatBackbone, bb, q.int8?.bytes);
  log(`  ${bb.name} forward passes alone: float ${out.forward.float.toFixed(0)} img/s, ${src.tfliteFloat ? 'integer' : 'int8'} ${out.forward.int8.toFixed(0)} img/s`);
  return out;
}

async function transfer(src: RowSource, int8: boolean, data: 'caltech97' | 'antsbees'): Promise<{ val: number; test: number; seconds: number }> {
  // a .tflite source: the integer row is the file as tlearn runs it, the float row --dequantize
  const tflite = !!src.tfliteFloat;
  const t = performance.now();
  const out = mkdtempSync(path.join(os.tmpdir(), 'tlearn-bench-bb-'));
  const r = await trainFromFolder({
    data: data === 'caltech97' ? CALTECH : HYMENOPTERA,
    exclude: data === 'caltech97' ? EXCLUDE.split(',') : undefined,
    backbone: src.flags[1],
    int8: (!tflite && int8) || undefined,
    dequantize: (tflite && !int8) || undefined,
    seed: 42,
    out,
    logger: silentLogger,
  });
  await fs.rm(out, { recursive: true, force: true });
  return { val: r.metrics.val.accuracy, test: r.metrics.test.accuracy, seconds: (performance.now() - t) / 1000 };
}

/** onnxruntime's per-node profile of `bytes` on 4 batches of 32 synthetic images: ms per image per operator type. */
async function profileModel(bytes: Uint8Array, label: string): Promise<{ label: string; ops: Record<string, number>; total: number; fused: Record<string, number> }> {
  const ort = await import('onnxruntime-node');
  const { decodeModel } = await import('../src/onnx/proto.js');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tlearn-profile-'));
  const B = 32;
  const x = Float32Array.from({ length: B * 224 * 224 * 3 }, (_, i) => Math.sin(i * 0.001) * 0.9);
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: os.availableParallelism(), interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', enableProfiling: true, profileFilePrefix: path.join(dir, 'p'), optimizedModelFilePath: path.join(dir, 'opt.onnx'), extra: { session: { intra_op: { allow_spinning: '0' } } } } as any);
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', x, [B, 224, 224, 3]) };
  await session.run(feeds);
  const runs = 4;
  for (let k = 0; k < runs; k++) await session.run(feeds);
  (session as any).endProfiling?.();
  await session.release();
  const src = decodeModel(bytes);
  const dw = new Set(src.graph.node.filter((n: any) => n.op_type === 'Conv' && (n.attribute ?? []).some((a: any) => a.name === 'group' && Number(a.i) > 1)).map((n: any) => n.name));
  const events = JSON.parse(await fs.readFile(path.join(dir, readdirSync(dir).find((f) => f.startsWith('p'))!), 'utf8'));
  const byName = new Map<string, number>();
  const ops: Record<string, number> = {};
  let total = 0;
  for (const e of events) {
    if (e.cat !== 'Node' || !String(e.name).endsWith('_kernel_time')) continue;
    const node = String(e.name).replace(/_kernel_time$/, '');
    byName.set(node, (byName.get(node) ?? 0) + 1);
    const isDw = [...dw].some((d) => node === d || node.startsWith(`${d}`));
    const key = `${e.args.op_name}${/Conv/.test(e.args.op_name) ? (isDw ? ' (depthwise)' : ' (other)') : ''}`;
    ops[key] = (ops[key] ?? 0) + e.dur;
    total += e.dur;
  }
  // the first run (warm-up) is profiled too: divide by all runs
  const n = (runs + 1) * B * 1000;
  for (const k of Object.keys(ops)) ops[k]! /= n;
  const fused: Record<string, number> = {};
  for (const node of decodeModel(new Uint8Array(await fs.readFile(path.join(dir, 'opt.onnx')))).graph.node) fused[node.op_type] = (fused[node.op_type] ?? 0) + 1;
  await fs.rm(dir, { recursive: true, force: true });
  return { label, ops, total: total / n, fused };
}

const PROFILE_ROUNDS = 3;

async function profile(sources: RowSource[]): Promise<void> {
  const calib = caltechImages().filter((_, i) => i % 10 === 5);
  const { int8Model } = await import('../src/runtime/int8.js');
  const lines = [`Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}, with \`npm run bench:backbones -- ${args.join(' ')}\`: onnxruntime's profiler (session option enableProfiling), 5 batches of 32 images at 224x224, ${os.availableParallelism()} threads; kernel time per image by operator type, depthwise convolutions apart, the lowest of ${PROFILE_ROUNDS} profiles taken in turn (the totals likewise, so they need not add up); the operators onnxruntime ran after its graph optimizations are listed under each model. Load average ${os.loadavg()[0]!.toFixed(1)}.`, ''];
  for (const src of sources) {
    const bb = await src.load();
    const fb = await cachedOnnx(backboneLayers(bb, "int8"), bb.id);
    const variants: Array<[string, Uint8Array]> = [['float', fb]];
    const q = await int8Model(fb, bb.id, { inputSize: bb.inputSize, preprocessing: bb.preprocessing, resize: bb.resize }, { calibration: calib });
    variants.push(['int8 (weights int8 per channel, all convolutions)', q.bytes]);
    const qdw = await int8Model(fb, bb.id, { inputSize: bb.inputSize, preprocessing: bb.preprocessing, resize: bb.resize }, { calibration: calib, skipDepthwise: true });
    variants.push(['int8, depthwise weights left float (onnxruntime quantizes them per tensor itself)', qdw.bytes]);
    // the variants in turn, ROUNDS times; per operator the lowest time over the rounds (the one least disturbed by other load)
    const profs: Array<Awaited<ReturnType<typeof profileModel>>> = [];
    for (let round = 0; round < PROFILE_ROUNDS; round++) {
      for (const [i, [label, bytes]] of variants.entries()) {
        const p = await profileModel(bytes, label);
        const best = profs[i];
        if (!best) profs[i] = p;
        else {
          for (const [k, v] of Object.entries(p.ops)) best.ops[k] = Math.min(best.ops[k] ?? Infinity, v);
          best.total = Math.min(best.total, p.total);
        }
      }
    }
    const keys = [...new Set(profs.flatMap((p) => Object.keys(p.ops)))].sort((a, b) => (profs[0]!.ops[b] ?? 0) - (profs[0]!.ops[a] ?? 0));
    lines.push(`**${src.name}** (ms per image)`, '', `| operator | ${profs.map((p) => p.label).join(' | ')} |`, `|---|${profs.map(() => '---').join('|')}|`);
    for (const k of keys) lines.push(`| ${k} | ${profs.map((p) => (p.ops[k] === undefined ? '' : p.ops[k]!.toFixed(3))).join(' | ')} |`);
    lines.push(`| **total** | ${profs.map((p) => `**${p.total.toFixed(3)}**`).join(' | ')} |`, '');
    for (const p of profs) lines.push(`- ${p.label}: ran ${Object.entries(p.fused).map(([k, v]) => `${v} ${k}`).join(', ')}`);
    lines.push('');
    log(lines.slice(-keys.length - 8).join('\n'));
  }
  await writeBenchSection('bench-backbones-profile', lines.join('\n').trimEnd());
  process.stdout.write(`${lines.join('\n')}\n`);
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? NaN;
const pct = (x?: number) => (x === undefined ? '' : x.toFixed(4));

async function main(): Promise<void> {
  const t0 = performance.now();
  const load0 = os.loadavg()[0]!;
  let sources = await sharedSources();
  sources.push(...(await zooSources(new Set(['mobilenet_v1_0.75']))));
  for (const extra of EXTRA_SOURCES) sources.push(...(await extra()));
  if (ONLY) sources = sources.filter((s) => ONLY.some((o) => s.name.toLowerCase().includes(o.toLowerCase())));
  if (!sources.length) throw new Error(`no backbone available (../shared absent and nothing in ${tlearnHome()}/models)`);
  if (!existsSync(CALTECH)) throw new Error(`bench:backbones needs ${CALTECH}`);
  log(`bench:backbones: ${sources.map((s) => s.name).join(', ')}; TLEARN_HOME ${tlearnHome()}`);
  if (args.includes('--profile')) return profile(sources.filter((s) => s.int8));
  const all = caltechImages();
  const speedImages = all.filter((_, i) => i % 10 === 0).slice(0, SPEED_IMAGES);
  const calib = all.filter((_, i) => i % 10 === 5);
  const rows: Measured[] = [];
  for (const src of sources) {
    const bb = await src.load();
    log(`${src.name}: ${bb.params} params, measuring extraction speed on ${speedImages.length} images`);
    const s = await speed(src, bb, speedImages, calib, 3);
    const dim = s.dim;
    const f: Measured = { name: src.name, variant: 'float', origin: src.origin, flags: src.tfliteFloat ? [...src.flags, '--dequantize'] : src.flags, params: bb.params, dim, modelBytes: s.floatBytes, imgPerSec: s.float, forwardPerSec: s.forward.float };
    const q: Measured = { name: src.name, variant: 'int8', origin: src.origin, flags: src.tfliteFloat ? src.flags : [...src.flags, '--int8'], params: bb.params, dim, modelBytes: s.int8Bytes, imgPerSec: s.int8, forwardPerSec: s.forward.int8 };
    if (ACCURACY) {
      for (const m of [f, q]) {
        log(`${src.name} ${m.variant}: transfer on Caltech-97`);
        m.caltech = await transfer(src, m.variant === 'int8', 'caltech97');
        log(`  test ${m.caltech.test.toFixed(4)} (val ${m.caltech.val.toFixed(4)}) in ${m.caltech.seconds.toFixed(0)} s`);
        if (existsSync(HYMENOPTERA)) {
          m.antsbees = await transfer(src, m.variant === 'int8', 'antsbees');
          log(`  ants/bees test ${m.antsbees.test.toFixed(4)}`);
        }
      }
    }
    rows.push(f, q);
  }
  const load1 = os.loadavg()[0]!;
  const lines = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}, with \`npm run bench:backbones${args.length ? ` -- ${args.join(' ')}` : ''}\` (${((performance.now() - t0) / 1000).toFixed(0)} s). 1-minute load average ${load0.toFixed(1)} at the start, ${load1.toFixed(1)} at the end.`,
    '',
    'Extraction: tlearn\'s feature pipeline without the cache on ' +
      `${speedImages.length} Caltech-97 JPEGs (every 10th: read, hash, decode, resize, forward pass), float and integer alternately, median of 3. ` +
      'Forward passes: the model alone on a synthetic batch of 32 (no reading or decoding), alternately, median of 5; the difference between the two columns is the decoding both variants share. ' +
      'For tlearn\'s own backbones the integer row is `--int8` (static post-training quantization, the stem of at most 16 channels kept float); for a quantized .tflite model it is the file\'s integer graph as tlearn runs it (a uint8 model\'s weights requantized to symmetric int8 per channel, exact in all but a few channels), and its float row the same model `--dequantize`d.' +
      (ACCURACY ? ' Transfer: `tlearn train` defaults (linear head, 40 epochs), seed 42; Caltech-97 with `--exclude notebook`, ants/bees with its own val/ as the test split; int8 rows calibrate on 300 images of the training split.' : ' Speed and size only (`--no-accuracy`): the accuracies are in the table above.') +
      ' Model size: the ONNX file tlearn runs.',
    '',
    ACCURACY ? '| backbone | variant | params | features | model size | extraction img/s | integer speed-up | forward passes img/s (speed-up) | Caltech-97 val / test | ants/bees val / test | flags |' : '| backbone | variant | params | features | model size | extraction img/s | integer speed-up | forward passes img/s (speed-up) | flags |',
    ACCURACY ? '|---|---|---|---|---|---|---|---|---|---|---|' : '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const float = rows.find((x) => x.name === r.name && x.variant === 'float')!;
    const speedup = r.variant === 'int8' ? `**${(median(r.imgPerSec) / median(float.imgPerSec)).toFixed(2)}x**` : '';
    const forward = `${r.forwardPerSec.toFixed(0)}${r.variant === 'int8' ? ` (${(r.forwardPerSec / float.forwardPerSec).toFixed(2)}x)` : ''}`;
    const tflite = r.flags.some((f) => f.endsWith('.tflite'));
    const variant = tflite ? (r.variant === 'int8' ? 'integer' : 'dequantized') : r.variant;
    const accuracy = ACCURACY ? ` ${r.caltech ? `${pct(r.caltech.val)} / **${pct(r.caltech.test)}**` : 'not run'} | ${r.antsbees ? `${pct(r.antsbees.val)} / ${pct(r.antsbees.test)}` : 'not run'} |` : '';
    lines.push(
      `| ${r.name} | ${variant} | ${r.params.toLocaleString('en-US')} | ${r.dim} | ${(r.modelBytes / 1e6).toFixed(2)} MB | ${median(r.imgPerSec).toFixed(1)} (${r.imgPerSec.map((x) => x.toFixed(0)).join(', ')}) | ${speedup} | ${forward} |${accuracy} \`${r.flags.map((x) => (x.startsWith('/') ? path.relative(process.cwd(), x) : x)).join(' ')}\` |`,
    );
  }
  await writeBenchSection(ACCURACY ? 'bench-backbones' : 'bench-backbones-speed', lines.join('\n'));
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((e) => {
  log(String(e?.stack ?? e));
  process.exit(1);
});
