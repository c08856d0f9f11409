/** tlearn serve: the HTTP API on a tiny trained model (fastify inject, plus real loopback sockets where it matters). */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseThreshold, rejectionStats } from '../src/classifier/threshold.js';
import { loadClassifier } from '../src/classifier/load.js';
import { predictImages } from '../src/classifier/predict.js';
import { encodeBmp } from '../src/image/bmp.js';
import { evaluateFolder } from '../src/evaluate/run.js';
import { exportClassifier } from '../src/export/export.js';
import type { InferenceRunner } from '../src/runtime/inference.js';
import { Batcher } from '../src/serve/batcher.js';
import { checkImage, prepareImage } from '../src/serve/images.js';
import { decodeImage } from '../src/image/decode.js';
import { preprocessInto, type PreprocessMode } from '../src/backbones/preprocess.js';
import { parseModelSpec, checkModelSpecs, defaultModelName } from '../src/serve/models.js';
import { createServer, ServeConfigError, startServer } from '../src/serve/server.js';
import { trainFromFolder } from '../src/train/run.js';
import { ROOT, makeDataset, makeTinyBackbone, runCli, tmpDir } from './helpers.js';

let data: string;
let runDir: string;
/** TLEARN_TEST_SERVE_INT8=1 runs these tests against `serve --int8` models (calibrated on the run's training images). */
const INT8 = process.env.TLEARN_TEST_SERVE_INT8 ? { int8: {} } : {};
let app: FastifyInstance;
let green: Buffer;

beforeAll(async () => {
  data = await makeDataset(tmpDir(), { classes: { red: 12, green: 12, blue: 12 }, seed: 5 });
  const backbone = await makeTinyBackbone(tmpDir());
  runDir = (await trainFromFolder({ data, backbone, epochs: 10, batchSize: 8, lr: 0.02, seed: 2, out: path.join(tmpDir(), 'tiny') })).outDir;
  app = await createServer([runDir], { threads: 1, ...INT8 });
  green = await fs.readFile(path.join(data, 'green', 'img_000.jpg'));
});

afterAll(async () => {
  await app?.close();
});

/** A multipart/form-data body built by the platform's own FormData encoder. */
async function multipart(files: Array<{ name: string; bytes: Buffer; type: string }>): Promise<{ body: Buffer; type: string }> {
  const fd = new FormData();
  files.forEach((f, i) => fd.append(`file${i}`, new Blob([new Uint8Array(f.bytes)], { type: f.type }), f.name));
  const req = new Request('http://localhost/', { method: 'POST', body: fd });
  return { body: Buffer.from(await req.arrayBuffer()), type: req.headers.get('content-type')! };
}

const post = (url: string, payload: Buffer | string, type?: string, headers: Record<string, string> = {}) => app.inject({ method: 'POST', url, payload, headers: { ...(type ? { 'content-type': type } : {}), ...headers } });

/** A PNG whose header declares width x height, with almost no pixel data. */
function pngHeader(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, d: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(d.length);
    const td = Buffer.concat([Buffer.from(type), d]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', Buffer.from([0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1])), chunk('IEND', Buffer.alloc(0))]);
}

describe('the open-set threshold', () => {
  it('keeps 95% of the correct validation predictions; what it rejects is counted', () => {
    // 20 rows of 2 classes: 19 correct with best probability 0.51..0.99, 1 wrong at 0.6
    const probs: number[] = [];
    const labels: number[] = [];
    for (let i = 0; i < 19; i++) {
      const p = 0.51 + i * 0.026;
      probs.push(p, 1 - p);
      labels.push(0);
    }
    probs.push(0.4, 0.6);
    labels.push(0);
    const t = chooseThreshold(Float32Array.from(probs), labels);
    // ceil(0.95 * 19) = 19 → keep all correct: the threshold is the lowest correct probability
    expect(t.value).toBeCloseTo(0.51, 6);
    expect(t.val).toMatchObject({ n: 20, correct: 19, correctRejected: 0, wrong: 1, wrongRejected: 0 });
    const t90 = chooseThreshold(Float32Array.from(probs), labels, { keepCorrect: 0.9 });
    expect(t90.value).toBeCloseTo(0.51 + 0.026, 6); // keeps 18 of 19
    expect(t90.val.correctRejected).toBe(1);
    const s = rejectionStats(Float32Array.from(probs), labels, 0.7);
    expect(s).toMatchObject({ rejected: 9, wrongRejected: 1, correctRejected: 8 }); // 0.51..0.692 and the wrong 0.6
    expect(chooseThreshold(new Float32Array([0.2, 0.8]), [0]).value).toBe(0); // nothing correct: nothing rejected
    expect(() => chooseThreshold(new Float32Array(4), [0, 1], { keepCorrect: 0 })).toThrow(/keepCorrect/);
  });

  it('training records it in the metadata, the report and metrics.json; predict uses it unless told otherwise', async () => {
    const meta = JSON.parse(await fs.readFile(path.join(runDir, 'model', 'metadata.json'), 'utf8'));
    expect(meta.threshold.value).toBeGreaterThan(0);
    expect(meta.threshold.rule).toMatch(/95% of the correct validation predictions/);
    const metrics = JSON.parse(await fs.readFile(path.join(runDir, 'metrics.json'), 'utf8'));
    expect(metrics.openSet.test.n).toBe(metrics.test.n);
    expect(metrics.openSet.threshold).toBe(meta.threshold.value);
    expect(await fs.readFile(path.join(runDir, 'report.html'), 'utf8')).toContain('threshold on the test split');
    const clf = await loadClassifier(runDir);
    const all = await predictImages(clf, [path.join(data, 'red')], { threshold: 1 });
    expect(all.predictions.every((p) => p.unknown)).toBe(true);
    const none = await predictImages(clf, [path.join(data, 'red')], { threshold: 0 });
    expect(none.predictions.some((p) => p.unknown)).toBe(false);
    const dflt = await predictImages(clf, [path.join(data, 'red')]);
    expect(dflt.threshold).toBe(meta.threshold.value);
    dflt.predictions.forEach((p) => expect(p.unknown).toBe(p.top[0]!.probability < meta.threshold.value));
    const cli = await runCli(['predict', runDir, path.join(data, 'red', 'img_000.jpg'), '--threshold', '1', '--json']);
    expect(JSON.parse(cli.stdout).predictions[0].unknown).toBe(true);
    const bad = await runCli(['predict', runDir, path.join(data, 'red', 'img_000.jpg'), '--threshold', '1.5']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--threshold must be a probability in \[0, 1\], got '1.5'/);
    // evaluate reports what the threshold rejects on the folder it evaluates
    const ev = await evaluateFolder(runDir, data, { out: path.join(tmpDir(), 'ev') });
    expect(ev.openSet.threshold).toBe(meta.threshold.value);
    expect(ev.openSet.n).toBe(ev.metrics.n);
    expect(JSON.parse(await fs.readFile(path.join(ev.outDir, 'metrics.json'), 'utf8')).openSet.rejected).toBe(ev.openSet.rejected);
    const off = await evaluateFolder(runDir, data, { out: path.join(tmpDir(), 'ev0'), threshold: 0 });
    expect(off.openSet.rejected).toBe(0);
  });
});

describe('request images', () => {
  it('are prepared bit for bit as decodeImage + preprocessing (one resample-and-preprocess pass), for JPEG and PNG, both resize modes', async () => {
    const noisy = (w: number, h: number) => Buffer.from(Array.from({ length: w * h * 3 }, (_, i) => (i * 37 + ((i / 3) | 0) * 11) % 251));
    const images = [
      await sharp(noisy(300, 200), { raw: { width: 300, height: 200, channels: 3 } }).jpeg({ quality: 85 }).toBuffer(),
      await sharp(noisy(224, 224), { raw: { width: 224, height: 224, channels: 3 } }).jpeg().toBuffer(),
      await sharp(noisy(224, 224), { raw: { width: 224, height: 224, channels: 3 } }).png().toBuffer(),
      await sharp(noisy(1000, 700), { raw: { width: 1000, height: 700, channels: 3 } }).jpeg().toBuffer(),
      await sharp(noisy(97, 61), { raw: { width: 97, height: 61, channels: 3 } }).webp({ lossless: true }).toBuffer(),
    ];
    for (const resize of ['squash', 'center-crop'] as const) {
      for (const preprocessing of ['tf', 'caffe', 'torch'] as PreprocessMode[]) {
        for (const bytes of images) {
          const meta = { inputSize: [96, 128], resize, preprocessing } as any;
          const served = await prepareImage({ name: '', bytes }, 0, 1, meta);
          const expected = new Float32Array(96 * 128 * 3);
          preprocessInto(await decodeImage(bytes, { width: 128, height: 96, resize }), preprocessing, expected, 0);
          expect(Buffer.from(served.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
        }
      }
    }
    // the JPEG header is read without sharp; a malformed one still gets sharp's reason
    await expect(checkImage({ name: '', bytes: images[3]! }, 0, 1, 1000 * 700 - 1)).rejects.toThrow(/1000x700 = 700000 pixels/);
    await expect(checkImage({ name: '', bytes: Buffer.concat([images[0]!.subarray(0, 4), Buffer.alloc(40, 0x41)]) }, 0, 1, 1e8)).rejects.toThrow(/unreadable|image/);
  });
});

describe('dynamic batching', () => {
  function fakeRunner(delayMs: number): InferenceRunner & { batches: number[] } {
    const batches: number[] = [];
    return {
      backend: 'fake',
      outputDim: 2,
      batches,
      async run(input, batch) {
        batches.push(batch);
        await new Promise((r) => setTimeout(r, delayMs));
        const out = new Float32Array(batch * 2);
        for (let i = 0; i < batch; i++) out.set([input[i * 3]!, i], i * 2); // echoes each image's first value
        return out;
      },
      close: async () => {},
    };
  }

  it('a lone image runs at once; images that arrive during a pass share the next; each gets its own row', async () => {
    const r = fakeRunner(20);
    const b = new Batcher(r, 3, { maxBatch: 4 });
    const one = await b.submit(new Float32Array([7, 0, 0]));
    expect(one[0]).toBe(7);
    expect(r.batches).toEqual([1]);
    const outs = await Promise.all(Array.from({ length: 10 }, (_, i) => b.submit(new Float32Array([i, 0, 0]))));
    outs.forEach((o, i) => expect(o[0]).toBe(i));
    // same tick: the first 4 go together, the rest queue during that pass
    expect(r.batches.slice(1)).toEqual([4, 4, 2]);
    await expect(b.submit(new Float32Array(2))).rejects.toThrow(/expected 3 input values/);
  });

  it('waits up to maxWaitMs for images still being decoded, never when none is on its way', async () => {
    const r = fakeRunner(1);
    const b = new Batcher(r, 3, { maxBatch: 8, maxWaitMs: 200 });
    // a lone image: nothing else announced, so it runs at once despite the long maxWaitMs
    const t0 = performance.now();
    await b.submit(new Float32Array(3), b.expect());
    expect(performance.now() - t0).toBeLessThan(100);
    expect(r.batches).toEqual([1]);
    // two announced images: the first waits for the second, which arrives 5 ms later
    const a1 = b.expect();
    const a2 = b.expect();
    const p1 = b.submit(new Float32Array(3), a1);
    await new Promise((res) => setTimeout(res, 5));
    expect(r.batches).toEqual([1]);
    const p2 = b.submit(new Float32Array(3), a2);
    await Promise.all([p1, p2]);
    expect(r.batches).toEqual([1, 2]);
    expect(b.expected).toBe(0);
    // an announced image that fails to decode releases the wait at once
    const a3 = b.expect();
    const a4 = b.expect();
    const t1 = performance.now();
    const p3 = b.submit(new Float32Array(3), a3);
    a4(); // gave up (e.g. a truncated JPEG)
    await p3;
    expect(performance.now() - t1).toBeLessThan(100);
    expect(r.batches).toEqual([1, 2, 1]);
    // the wait is bounded: an image announced and never released delays a batch by maxWaitMs at most
    const b2 = new Batcher(r, 3, { maxBatch: 8, maxWaitMs: 30 });
    b2.expect();
    const t2 = performance.now();
    await b2.submit(new Float32Array(3), b2.expect());
    expect(performance.now() - t2).toBeGreaterThanOrEqual(25);
  });

  it('a failed pass rejects its images, and the batcher goes on', async () => {
    let fail = true;
    const r = fakeRunner(1);
    const run = r.run.bind(r);
    r.run = async (x, n) => {
      if (fail) {
        fail = false;
        throw new Error('boom');
      }
      return run(x, n);
    };
    const b = new Batcher(r, 3);
    await expect(b.submit(new Float32Array(3))).rejects.toThrow('boom');
    expect((await b.submit(new Float32Array([5, 0, 0])))[0]).toBe(5);
  });
});

describe('tlearn serve API', () => {
  it('--help explains every flag', async () => {
    const help = (await runCli(['serve', '--help'])).stdout;
    for (const flag of ['--host', '--port', '--api-key', '--insecure-no-auth', '--cors', '--max-body-mb', '--max-pixels', '--max-images', '--timeout-ms', '--max-batch', '--max-wait-ms', '--threads', '--quiet']) expect(help).toContain(flag);
    expect(help).toMatch(/POST \/v1\/models\/\{name\}:predict/);
    expect((await runCli(['export', '--help'])).stdout).toMatch(/web: +a static folder/);
  });

  it('web export: the files of a static site; refuses to write into the run folder or a folder that is not an export', async () => {
    const out = path.join(tmpDir(), 'site');
    const r = await exportClassifier(runDir, { format: 'web', out });
    expect(r.files.map((f) => path.relative(out, f)).sort()).toEqual(['README.md', 'assets/page.css', 'assets/page.js', 'classifier.js', 'index.html', 'metadata.json', 'model.onnx', 'ort/ort-wasm-simd-threaded.mjs', 'ort/ort-wasm-simd-threaded.wasm', 'ort/ort.wasm.bundle.min.mjs', 'preprocess.js']);
    expect(r.bytes).toBeGreaterThan(1e6);
    expect(await fs.readFile(path.join(out, 'index.html'), 'utf8')).toContain('content="local"');
    const meta = JSON.parse(await fs.readFile(path.join(out, 'metadata.json'), 'utf8'));
    expect(meta).toMatchObject({ name: 'tiny', labels: ['blue', 'green', 'red'], modelFile: 'model.onnx', inputName: 'input' });
    expect(meta.threshold.value).toBeGreaterThan(0);
    expect(meta.test.accuracy).toBeGreaterThan(0);
    await exportClassifier(runDir, { format: 'web', out }); // again into its own export: fine
    await expect(exportClassifier(runDir, { format: 'web', out: runDir })).rejects.toThrow(/is the run or model folder itself/);
    const other = tmpDir();
    await fs.writeFile(path.join(other, 'notes.txt'), 'mine');
    await expect(exportClassifier(runDir, { format: 'web', out: other })).rejects.toThrow(/exists and is not a tlearn web export/);
    expect(await fs.readdir(other)).toEqual(['notes.txt']);
    const cli = await runCli(['export', runDir, '--format', 'web', '--out', path.join(tmpDir(), 'cli-site')]);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/exported web: .*cli-site \(11 files, \d+\.\d MB\)/);
  });

  it('names models by folder or name=path, and refuses duplicates and bad names', () => {
    expect(defaultModelName('/x/runs/pets')).toBe('pets');
    expect(defaultModelName('/x/runs/pets/model')).toBe('pets');
    expect(defaultModelName('/x/exp/cats dogs.onnx')).toBe('cats_dogs');
    expect(parseModelSpec('a=/x/y')).toEqual({ name: 'a', path: '/x/y' });
    expect(() => checkModelSpecs([parseModelSpec('/a/m'), parseModelSpec('/b/m')])).toThrow(/two models are named 'm'/);
    expect(() => checkModelSpecs([{ name: '../x', path: '/a' }])).toThrow(/must be letters, digits/);
    expect(() => checkModelSpecs([])).toThrow(/no model given/);
  });

  it('answers every image content type with the same classes as tlearn predict', async () => {
    const rgb = await sharp(green).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const bodies: Record<string, Buffer> = {
      'image/jpeg': green,
      'image/png': await sharp(green).png().toBuffer(),
      'image/webp': await sharp(green).webp({ lossless: true }).toBuffer(),
      'image/gif': await sharp(green).gif().toBuffer(),
      'image/tiff': await sharp(green).tiff().toBuffer(),
      'image/bmp': Buffer.from(encodeBmp(new Uint8Array(rgb.data), rgb.info.width, rgb.info.height)),
      'application/octet-stream': green,
    };
    const expected = (await predictImages(await loadClassifier(runDir), [path.join(data, 'green', 'img_000.jpg')])).predictions[0]!;
    for (const [type, body] of Object.entries(bodies)) {
      const r = await post('/v1/models/tiny/predict?top=2', body, type);
      expect(r.statusCode, `${type}: ${r.body}`).toBe(200);
      const j = r.json();
      expect(j.model).toBe('tiny');
      expect(j.predictions).toHaveLength(1);
      expect(j.predictions[0].top).toHaveLength(2);
      expect(j.predictions[0].top[0].label).toBe('green');
      expect(typeof j.predictions[0].ms).toBe('number');
      expect(typeof j.predictions[0].unknown).toBe('boolean');
    }
    // the JPEG is decoded exactly as predict decodes it
    const jpeg = (await post('/v1/predict?top=3', green, 'image/jpeg')).json().predictions[0];
    // `tlearn predict` runs the float model: with --int8 the probabilities differ by the quantization error (3e-4 measured)
    jpeg.top.forEach((t: any, i: number) => expect(Math.abs(t.probability - expected.top[i]!.probability)).toBeLessThan(INT8.int8 ? 0.01 : 1e-5));
  });

  it('multipart with 3 files answers 3 predictions in order; threshold and top come from the query', async () => {
    const files = ['red', 'green', 'blue'].map((c) => ({ name: `${c}.jpg`, type: 'image/jpeg', bytes: Buffer.alloc(0), c }));
    for (const f of files) f.bytes = await fs.readFile(path.join(data, f.c, 'img_001.jpg'));
    const mp = await multipart(files);
    const r = await post('/v1/models/tiny/predict?top=1&threshold=0', mp.body, mp.type);
    expect(r.statusCode, r.body).toBe(200);
    const j = r.json();
    expect(j.threshold).toBe(0);
    expect(j.predictions.map((p: any) => p.image)).toEqual(['red.jpg', 'green.jpg', 'blue.jpg']);
    expect(j.predictions.map((p: any) => p.top[0].label)).toEqual(['red', 'green', 'blue']);
    expect(j.predictions.every((p: any) => p.top.length === 1 && p.unknown === false)).toBe(true);
    const all = (await post('/v1/predict?threshold=1', green, 'image/jpeg')).json();
    expect(all.predictions[0].unknown).toBe(true);
    const dflt = (await post('/v1/predict', green, 'image/jpeg')).json();
    expect(dflt.threshold).toBe((await loadClassifier(runDir)).metadata.threshold!.value);
  });

  it('TensorFlow Serving REST: {"instances":[{"b64"}]} → {"predictions"}', async () => {
    const red = await fs.readFile(path.join(data, 'red', 'img_002.jpg'));
    const r = await app.inject({ method: 'POST', url: '/v1/models/tiny:predict', payload: { instances: [{ b64: green.toString('base64') }, { image_bytes: { b64: red.toString('base64') } }] } });
    expect(r.statusCode, r.body).toBe(200);
    const j = r.json();
    expect(j.predictions).toHaveLength(2);
    expect(j.predictions[0].probabilities).toHaveLength(3);
    expect(j.predictions.map((p: any) => p.label)).toEqual(['green', 'red']);
    const bad = await app.inject({ method: 'POST', url: '/v1/models/tiny:predict', payload: { instances: [{ b64: 'not base64 !!' }] } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().detail).toMatch(/not base64/);
  });

  it('model cards, health, readiness and Prometheus metrics', async () => {
    const list = (await app.inject('/v1/models')).json();
    expect(list.models.map((m: any) => m.name)).toEqual(['tiny']);
    const card = (await app.inject('/v1/models/tiny')).json();
    expect(card).toMatchObject({ name: 'tiny', labels: ['blue', 'green', 'red'], inputSize: [32, 32], preprocessing: 'tf', resize: 'squash', format: 'run folder', report: '/v1/models/tiny/report.html' });
    expect(card.test.accuracy).toBeGreaterThan(0);
    expect(card.threshold.value).toBeGreaterThan(0);
    expect(JSON.stringify(card)).not.toContain(runDir); // no file system paths
    const report = await app.inject(card.report);
    expect(report.statusCode).toBe(200);
    expect(report.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect((await app.inject('/healthz')).json()).toEqual({ status: 'ok' });
    expect((await app.inject('/readyz')).json()).toEqual({ status: 'ready', models: ['tiny'] });
    const page = await app.inject('/');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('content="server"');
    expect((await app.inject('/assets/page.js')).statusCode).toBe(200);
    const m = (await app.inject('/metrics')).body;
    expect(m).toMatch(/tlearn_http_requests_total\{method="POST",route="\/v1\/models\/:name\/predict",status="200"\} \d+/);
    expect(m).toMatch(/tlearn_http_request_duration_seconds_bucket/);
    expect(m).toMatch(/tlearn_batch_size_bucket\{le="1",model="tiny"\} \d+/);
  });

  it('bad requests get 400/404/405/413/415/422 with {error, detail}, and /healthz still answers', async () => {
    const cases: Array<[string, () => Promise<{ statusCode: number; json(): any }>, number, RegExp]> = [
      ['truncated JPEG', () => post('/v1/predict', green.subarray(0, Math.floor(green.length / 2)), 'image/jpeg'), 422, /truncated JPEG/],
      ['text file as text/plain', () => post('/v1/predict', 'hello, not an image', 'text/plain'), 415, /raw body/],
      ['text file as image/jpeg', () => post('/v1/predict', Buffer.from('hello, not an image'), 'image/jpeg'), 422, /not a JPEG, PNG, GIF, WebP, BMP, TIFF, AVIF, HEIF or SVG/],
      ['PNG declaring 50000x50000', () => post('/v1/predict', pngHeader(50000, 50000), 'image/png'), 413, /50000x50000 = 2500000000 pixels/],
      ['empty body', () => post('/v1/predict', Buffer.alloc(0), 'image/jpeg'), 400, /empty/],
      ['no body at all', () => app.inject({ method: 'POST', url: '/v1/predict' }), 400, /send an image/],
      ['60 MB body', () => post('/v1/predict', Buffer.alloc(60 * 1024 * 1024), 'image/jpeg'), 413, /over the limit of 20971520 bytes/],
      ['unknown model', () => post('/v1/models/nope/predict', green, 'image/jpeg'), 404, /no model named 'nope'; served: tiny/],
      ['unknown TF-Serving model', () => app.inject({ method: 'POST', url: '/v1/models/nope:predict', payload: { instances: [{ b64: 'AAAA' }] } }), 404, /no model named 'nope'/],
      ['wrong method', () => app.inject({ method: 'GET', url: '/v1/models/tiny/predict' }), 405, /GET is not allowed.*use POST/],
      ['wrong method on a card', () => app.inject({ method: 'DELETE', url: '/v1/models/tiny' }), 405, /DELETE is not allowed/],
      ['bad top', () => post('/v1/predict?top=0', green, 'image/jpeg'), 400, /top must be an integer/],
      ['bad threshold', () => post('/v1/predict?threshold=2', green, 'image/jpeg'), 400, /threshold must be a probability/],
      ['invalid JSON', () => post('/v1/models/tiny:predict', '{"instances": [', 'application/json'), 400, /JSON/],
      ['multipart without files', async () => { const fd = new FormData(); fd.append('x', 'y'); const q = new Request('http://l/', { method: 'POST', body: fd }); return post('/v1/predict', Buffer.from(await q.arrayBuffer()), q.headers.get('content-type')!); }, 400, /no file field/],
      ['33 images', async () => { const mp = await multipart(Array.from({ length: 33 }, (_, i) => ({ name: `${i}.jpg`, bytes: green, type: 'image/jpeg' }))); return post('/v1/predict', mp.body, mp.type); }, 413, /more files than the limit/],
      ['unknown route', () => app.inject('/v2/whatever'), 404, /no route GET \/v2\/whatever/],
      ['path outside the assets', () => app.inject('/assets/..%2f..%2fpackage.json'), 404, /no asset/],
    ];
    for (const [what, send, status, detail] of cases) {
      const r = await send();
      expect(r.statusCode, what).toBe(status);
      const j = r.json();
      expect(Object.keys(j).sort(), what).toEqual(['detail', 'error']);
      expect(j.detail, what).toMatch(detail);
    }
    expect((await app.inject('/healthz')).statusCode).toBe(200);
    // and the server still classifies
    expect((await post('/v1/predict', green, 'image/jpeg')).statusCode).toBe(200);
  });

  it('a non-loopback bind needs an API key: refused without one; with one, 401 without the key and 200 with it', async () => {
    await expect(createServer([runDir], { host: '0.0.0.0' })).rejects.toThrow(ServeConfigError);
    const cli = await runCli(['serve', runDir, '--host', '0.0.0.0', '--port', '0']);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/refusing to listen on 0\.0\.0\.0 without an API key/);
    const keyed = await createServer([runDir], { host: '0.0.0.0', apiKey: 's3cret-key', threads: 1, ...INT8 }); // inject: nothing is bound
    try {
      const without = await keyed.inject({ method: 'POST', url: '/v1/predict', payload: green, headers: { 'content-type': 'image/jpeg' } });
      expect(without.statusCode).toBe(401);
      expect(without.headers['www-authenticate']).toBe('Bearer');
      const wrong = await keyed.inject({ method: 'POST', url: '/v1/predict', payload: green, headers: { 'content-type': 'image/jpeg', authorization: 'Bearer s3cret-kez' } });
      expect(wrong.statusCode).toBe(401);
      const ok = await keyed.inject({ method: 'POST', url: '/v1/predict', payload: green, headers: { 'content-type': 'image/jpeg', authorization: 'Bearer s3cret-key' } });
      expect(ok.statusCode).toBe(200);
      expect((await keyed.inject('/metrics')).statusCode).toBe(401);
      expect((await keyed.inject('/healthz')).statusCode).toBe(200);
      expect((await keyed.inject('/')).statusCode).toBe(200);
    } finally {
      await keyed.close();
    }
  });

  it('CORS is off by default and on for the given origin', async () => {
    const plain = await app.inject({ method: 'GET', url: '/v1/models', headers: { origin: 'https://example.org' } });
    expect(plain.headers['access-control-allow-origin']).toBeUndefined();
    const withCors = await createServer([runDir], { cors: ['https://example.org'], threads: 1, ...INT8 });
    try {
      const r = await withCors.inject({ method: 'GET', url: '/v1/models', headers: { origin: 'https://example.org' } });
      expect(r.headers['access-control-allow-origin']).toBe('https://example.org');
    } finally {
      await withCors.close();
    }
  });

  it('serves exported .onnx files and several models at once, on a real loopback socket', async () => {
    const onnx = (await exportClassifier(runDir, { format: 'onnx', out: path.join(tmpDir(), 'exported.onnx') })).files[0]!;
    const s = await startServer([`a=${runDir}`, onnx], { port: 0, threads: 1 }, false);
    try {
      const names = ((await (await fetch(`${s.url}/v1/models`)).json()) as any).models.map((m: any) => `${m.name}:${m.format}`);
      expect(names).toEqual(['a:run folder', 'exported:onnx']);
      for (const name of ['a', 'exported']) {
        const r = await fetch(`${s.url}/v1/models/${name}/predict`, { method: 'POST', body: new Uint8Array(green), headers: { 'content-type': 'image/jpeg' } });
        expect(r.status).toBe(200);
        expect(((await r.json()) as any).predictions[0].top[0].label).toBe('green');
      }
      const which = await fetch(`${s.url}/v1/predict`, { method: 'POST', body: new Uint8Array(green), headers: { 'content-type': 'image/jpeg' } });
      expect(which.status).toBe(400);
      expect(((await which.json()) as any).detail).toMatch(/2 models are served/);
      // concurrent requests are batched
      await Promise.all(Array.from({ length: 24 }, () => fetch(`${s.url}/v1/models/a/predict`, { method: 'POST', body: new Uint8Array(green), headers: { 'content-type': 'image/jpeg' } })));
      const metrics = await (await fetch(`${s.url}/metrics`)).text();
      const count = Number(/tlearn_batch_size_count\{model="a"\} (\d+)/.exec(metrics)![1]);
      const sum = Number(/tlearn_batch_size_sum\{model="a"\} (\d+)/.exec(metrics)![1]);
      expect(sum).toBe(25 + 0); // 1 + 24 images
      expect(count).toBeLessThan(sum); // fewer forward passes than images
    } finally {
      await s.app.close();
    }
  });

  it('SIGTERM: stops accepting, finishes the request in flight, exits 0', async () => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/tlearn.js'), 'serve', runDir, '--port', '0', '--threads', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = /^(http:\/\/127\.0\.0\.1:\d+)$/m.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on('exit', () => reject(new Error(`serve exited: ${stderr}`)));
    });
    const { port } = new URL(url);
    // A request whose body is half sent when the signal arrives.
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/v1/predict', method: 'POST', headers: { 'content-type': 'image/jpeg', 'content-length': green.length } }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.write(green.subarray(0, 100));
      setTimeout(() => {
        child.kill('SIGTERM');
        setTimeout(() => req.end(green.subarray(100)), 300);
      }, 200);
    });
    const r = await answer;
    expect(r.status, r.body).toBe(200);
    expect(JSON.parse(r.body).predictions[0].top[0].label).toBe('green');
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/SIGTERM: no new connections; finishing the requests in flight/);
  });
});
