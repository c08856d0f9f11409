import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { downloadFile, HashMismatchError } from '../src/util/download.js';
import { decodeWeights, readLayersModel, writeLayersModel, ModelFormatError, type LayersModelArtifacts } from '../src/backbones/layers-model.js';
import { BackboneError, loadBackbone } from '../src/backbones/load.js';
import { BackboneUnavailableError, ensureZooModel, entryDir, importModel, RECORD_FILE, zooStatus } from '../src/backbones/model-cache.js';
import { cutAndPool, teachableMachineBackbone } from '../src/backbones/surgery.js';
import { findZooEntry, ZOO } from '../src/backbones/zoo.js';
import { sha256 } from '../src/util/hash.js';
import { createHash } from 'node:crypto';
import { MOBILENET, TM_EXPORT, hasShared, makeTinyBackbone, tmpDir, writeAppH5 } from './helpers.js';

describe('TF.js layers model files', () => {
  it('round-trips topology and weights, and reports a truncated weight file clearly', async () => {
    const dir = await makeTinyBackbone(tmpDir());
    const a = await readLayersModel(dir);
    expect(a.weightSpecs.map((w) => w.name)).toEqual(['c1/kernel', 'c1/bias', 'c2/kernel', 'c2/bias', 'c2_bn/gamma', 'c2_bn/beta', 'c2_bn/moving_mean', 'c2_bn/moving_variance']);
    const copy = tmpDir();
    await writeLayersModel(copy, a);
    const b = await readLayersModel(copy);
    expect(Buffer.from(b.weightData).equals(Buffer.from(a.weightData))).toBe(true);
    await fs.truncate(path.join(copy, 'weights.bin'), 100);
    await expect(readLayersModel(copy)).rejects.toThrow(/hold 100 bytes, the manifest describes/);
    await expect(readLayersModel(tmpDir())).rejects.toThrow(ModelFormatError);
  });

  it('dequantises uint8, uint16 and float16 weights as TF.js does', () => {
    const u8 = new Uint8Array([0, 10, 255]);
    const u16 = new Uint16Array([0, 1000]);
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x3555]); // 1, -2, ~0.3333
    const data = new Uint8Array(3 + 4 + 6 + 1);
    data.set(u8, 0);
    data.set(new Uint8Array(u16.buffer), 3);
    data.set(new Uint8Array(f16.buffer), 7);
    const a: LayersModelArtifacts = {
      modelTopology: { class_name: 'Sequential', config: { layers: [] } },
      weightSpecs: [
        { name: 'a', shape: [3], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.5, min: -1 } },
        { name: 'b', shape: [2], dtype: 'float32', quantization: { dtype: 'uint16', scale: 0.01, min: 0 } },
        { name: 'c', shape: [3], dtype: 'float32', quantization: { dtype: 'float16' } },
      ],
      weightData: data.buffer.slice(0, 13),
    };
    const w = decodeWeights(a);
    expect(Array.from(w.get('a')!.data)).toEqual([-1, 4, 126.5]);
    expect(Array.from(w.get('b')!.data).map((v) => +v.toFixed(4))).toEqual([0, 10]);
    expect(Array.from(w.get('c')!.data).map((v) => +v.toFixed(4))).toEqual([1, -2, 0.3333]);
  });
});

describe('backbone surgery and loading', () => {
  it('cuts a local model at a layer and pools it; a 4-D output model gets global average pooling', async () => {
    const dir = await makeTinyBackbone(tmpDir());
    const a = await readLayersModel(dir);
    const cut = cutAndPool(a, 'c1', 'avg');
    expect(cut.weightSpecs.map((w) => w.name)).toEqual(['c1/kernel', 'c1/bias']);
    expect(() => cutAndPool(a, 'nope', 'avg')).toThrow(/layer 'nope' not found/);
    const bb = await loadBackbone(dir);
    expect(bb.inputSize).toEqual([32, 32]);
    expect(bb.preprocessing).toBe('tf');
    expect(bb.note).toMatch(/out_relu/);
    const cutAt = await loadBackbone(dir, { cutAt: 'c1', preprocessing: 'unit' });
    expect(cutAt.params).toBe(3 * 8 + 8);
    expect(cutAt.preprocessing).toBe('unit');
    expect(cutAt.id).not.toBe(bb.id);
  });

  it('names unknown backbones and lists the zoo', async () => {
    await expect(loadBackbone('resnet9000')).rejects.toThrow(BackboneError);
    await expect(loadBackbone('resnet9000')).rejects.toThrow(/unknown backbone 'resnet9000'.*mobilenet_v2_0.35/);
    expect(findZooEntry('mobilenet_v2_0.5')?.name).toBe('mobilenet_v2_0.50');
    expect(findZooEntry('MobileNetV2_1')?.name).toBe('mobilenet_v2_1.00');
    expect(findZooEntry('VGG16')?.name).toBe('vgg16');
    expect(findZooEntry('vgg16_notop')?.featureDim).toBe(512);
  });

  it.runIf(hasShared(MOBILENET, 'MobileNetV2 backbone test'))('uses the shared MobileNetV2 as is (it ends in global pooling)', async () => {
    const bb = await loadBackbone(MOBILENET);
    expect(bb.params).toBe(410208);
    expect(bb.inputSize).toEqual([224, 224]);
  });

  it.runIf(hasShared(TM_EXPORT, 'Teachable Machine backbone test'))('takes the backbone out of a Teachable Machine export, byte-identical to the shared MobileNetV2', async () => {
    const tm = await readLayersModel(TM_EXPORT);
    const bbArt = teachableMachineBackbone(tm)!;
    const mn = await readLayersModel(MOBILENET);
    expect(Buffer.from(bbArt.weightData).equals(Buffer.from(mn.weightData))).toBe(true);
    const bb = await loadBackbone(TM_EXPORT);
    expect(bb.resize).toBe('center-crop');
    expect(bb.note).toMatch(/Teachable Machine/);
    expect(bb.params).toBe(410208);
  });
});

/** A tiny HTTP server for the zoo's download tests, counting requests. */
function mirror(files: Record<string, string | Buffer>) {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(req.url!);
    const body = files[req.url!];
    if (body === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-length': Buffer.byteLength(body) }).end(body);
  });
  return { server, hits };
}

describe('zoo downloads (against a local HTTP server serving Keras .h5 files)', () => {
  const entry = ZOO.find((e) => e.name === 'mobilenet_v2_0.35')!;
  const vgg = ZOO.find((e) => e.name === 'vgg16')!;
  const h5Path = new URL(entry.url).pathname;
  let srv: ReturnType<typeof mirror>;
  let base = '';
  let h5: Buffer = Buffer.alloc(0);

  beforeAll(async () => {
    const file = path.join(tmpDir(), entry.file);
    const source = hasShared(MOBILENET, 'zoo download tests with the real weights') ? await readLayersModel(MOBILENET) : undefined;
    await writeAppH5(entry.app, file, { source });
    h5 = await fs.readFile(file);
    srv = mirror({ [h5Path]: h5, [new URL(vgg.url).pathname]: Buffer.from('not the VGG16 weights') });
    await new Promise<void>((r) => srv.server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(srv.server.address() as AddressInfo).port}`;
  });
  afterAll(() => srv.server.close());
  beforeEach(async () => {
    process.env.TLEARN_HOME = tmpDir('tlearn-home-');
    process.env.TLEARN_MIRROR = base;
    srv.hits.length = 0;
  });

  it('downloads on first use, records the hash, verifies it on later loads and never fetches again', async () => {
    const dir = await ensureZooModel(entry);
    expect(srv.hits).toEqual([h5Path]);
    const record = JSON.parse(await fs.readFile(path.join(dir, RECORD_FILE), 'utf8'));
    expect(record.hashOrigin).toBe('first-download');
    expect(record.files[entry.file]).toBe(sha256(h5));
    const bb = await loadBackbone('mobilenet_v2_0.35');
    expect(bb.name).toBe('mobilenet_v2_0.35');
    expect(bb.params).toBe(410208);
    expect(srv.hits).toHaveLength(1);
    const status = (await zooStatus()).find((s) => s.entry.name === 'mobilenet_v2_0.35')!;
    expect(status.cached).toBe(true);
    expect(status.bytes).toBe(h5.length);
  });

  it('re-downloads a cached file that no longer matches its recorded hash', async () => {
    const dir = await ensureZooModel(entry);
    const f = path.join(dir, entry.file);
    const bytes = await fs.readFile(f);
    bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0xff;
    await fs.writeFile(f, bytes);
    srv.hits.length = 0;
    await ensureZooModel(entry);
    expect(srv.hits).toHaveLength(1);
    expect(sha256(await fs.readFile(f))).toBe(sha256(h5));
  });

  it("a download whose hash differs from Keras' published one fails clearly and keeps no file", async () => {
    const err = await ensureZooModel(vgg).catch((e) => e);
    expect(err).toBeInstanceOf(HashMismatchError);
    expect(err.message).toMatch(/md5 is [0-9a-f]{32}, the publisher's is 64373286793e3c8b2b4e3219cbf3544b; the file was not kept/);
    expect(await fs.readdir(path.join(process.env.TLEARN_HOME!, 'models')).catch(() => [])).toEqual([]);
  });

  it('rejects a download whose publisher hash differs, and keeps no file (downloadFile)', async () => {
    const dest = path.join(tmpDir(), 'x.bin');
    await expect(downloadFile(`${base}${new URL(vgg.url).pathname}`, dest, { expected: { algorithm: 'sha256', value: '0'.repeat(64) } })).rejects.toThrow(HashMismatchError);
    expect(await fs.readdir(path.dirname(dest))).toEqual([]);
    const ok = await downloadFile(`${base}${new URL(vgg.url).pathname}`, dest, { expected: { algorithm: 'md5', value: createHash('md5').update('not the VGG16 weights').digest('hex') } });
    expect(ok.bytes).toBe(21);
  });

  it('offline with nothing cached: a clear error naming both remedies', async () => {
    process.env.TLEARN_MIRROR = 'http://127.0.0.1:9'; // nothing listens on the discard port
    const err = await loadBackbone('mobilenet_v2_0.35').catch((e) => e);
    expect(err).toBeInstanceOf(BackboneUnavailableError);
    expect(err.message).toMatch(/not in the cache .* could not be downloaded/);
    expect(err.message).toMatch(/connect this machine to the internet/);
    expect(err.message).toMatch(/tlearn models import mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5 --name mobilenet_v2_0.35/);
    expect(await fs.readdir(path.join(process.env.TLEARN_HOME!, 'models')).catch(() => [])).toEqual([]);
  });

  it('an HTTP error is reported with its status', async () => {
    process.env.TLEARN_MIRROR = `${base}/missing`;
    await expect(ensureZooModel(entry)).rejects.toThrow(/HTTP 404/);
  });

  it('imports an .h5 file or a TF.js folder for offline machines; later loads verify them without network', async () => {
    process.env.TLEARN_MIRROR = 'http://127.0.0.1:9';
    const src = path.join(tmpDir(), entry.file);
    await fs.writeFile(src, h5);
    const { dir, record } = await importModel(src, 'mobilenet_v2_0.35');
    expect(dir).toBe(entryDir(entry));
    expect(record.origin).toBe('import');
    const bb = await loadBackbone('mobilenet_v2_0.35');
    expect(bb.params).toBe(410208);
    await expect(importModel(src, 'nope')).rejects.toThrow(/no zoo backbone named 'nope'/);
    // a file that is not what Keras publishes for an entry with a published hash is refused
    await expect(importModel(src, 'vgg16')).rejects.toThrow(/it is not the vgg16 weights file/);
    await fs.appendFile(path.join(dir, entry.file), 'x');
    await expect(loadBackbone('mobilenet_v2_0.35')).rejects.toThrow(/has sha256 .* recorded/);
    if (hasShared(MOBILENET, 'import of a TF.js folder')) {
      await importModel(MOBILENET, 'mobilenet_v2_0.35');
      expect((await loadBackbone('mobilenet_v2_0.35')).params).toBe(410208);
    }
  });

  it('--weights <file.h5> uses a local file for this run', async () => {
    process.env.TLEARN_MIRROR = 'http://127.0.0.1:9';
    const src = path.join(tmpDir(), 'w.h5');
    await fs.writeFile(src, h5);
    const bb = await loadBackbone('mobilenet_v2_0.35', { weights: src });
    expect(bb.params).toBe(410208);
    await expect(loadBackbone('vgg16', { weights: src })).rejects.toThrow(/not the vgg16 weights file/);
  });
});
