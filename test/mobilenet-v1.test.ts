/**
 * MobileNet (v1) as zoo entries: the architecture and its parameter counts, Keras-layout .h5 weights, names,
 * layer groups for --unfreeze (its 13 depthwise-separable blocks), `models import` of the older Keras 2.1 TF.js
 * copy in ../shared, and that copy's 1000-class top on ants/bees and Coral's test images.
 */
import { promises as fs, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kerasAppArtifacts } from '../src/backbones/keras-apps/artifacts.js';
import { buildKerasApp } from '../src/backbones/keras-apps/build.js';
import { readLayersModel } from '../src/backbones/layers-model.js';
import { loadBackbone } from '../src/backbones/load.js';
import { BackboneUnavailableError, importModel } from '../src/backbones/model-cache.js';
import { preprocess } from '../src/backbones/preprocess.js';
import { findZooEntry, ZOO } from '../src/backbones/zoo.js';
import { decodeImage } from '../src/image/decode.js';
import { groupsToUnfreeze, layerGroups } from '../src/engine/layer-groups.js';
import { layersModelToOnnx } from '../src/onnx/convert.js';
import { createRunner } from '../src/runtime/inference.js';
import { getTf } from '../src/runtime/tfjs.js';
import { HYMENOPTERA, MOBILENET, SHARED, hasShared, runCli, tmpDir, writeAppH5 } from './helpers.js';

const V1 = path.join(SHARED, 'models/mobilenet_v1_0.75_224_imagenet');
const CORAL = path.join(SHARED, 'images/coral');

describe('MobileNet (v1) in the zoo', () => {
  it('has the four Keras widths at 224, with Keras URLs, cut point, preprocessing and feature sizes', () => {
    const v1 = ZOO.filter((e) => e.app.family === 'mobilenet_v1');
    expect(v1.map((e) => e.name)).toEqual(['mobilenet_v1_0.25', 'mobilenet_v1_0.50', 'mobilenet_v1_0.75', 'mobilenet_v1_1.00']);
    expect(v1.map((e) => e.featureDim)).toEqual([256, 512, 768, 1024]);
    const e = findZooEntry('mobilenet_v1_0.75')!;
    expect(e.url).toBe('https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/mobilenet_7_5_224_tf_no_top.h5');
    expect(findZooEntry('mobilenet_v1_1.00')!.file).toBe('mobilenet_1_0_224_tf_no_top.h5');
    expect(findZooEntry('mobilenet_v1_0.25')!.tfjsUrl).toBe('https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v1_0.25_224/model.json');
    expect(findZooEntry('mobilenet_v1_1')!.tfjsUrl).toBe('https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v1_1.0_224/model.json');
    expect([e.cutAt, e.preprocessing, e.pooling, e.hash]).toEqual(['conv_pw_13_relu', 'tf', 'avg', undefined]);
    expect(findZooEntry('MobileNet_0.5')!.name).toBe('mobilenet_v1_0.50');
    expect(findZooEntry('mobilenet_v2_0.5')!.name).toBe('mobilenet_v2_0.50');
  });

  it('has the parameter counts Keras reports', async () => {
    const tf = await getTf();
    const cases: Array<[number, boolean, number]> = [
      [0.25, false, 218_544],
      [0.75, false, 1_832_976],
      [0.75, true, 2_601_976],
      [1.0, true, 4_253_864],
    ];
    for (const [alpha, includeTop, n] of cases) {
      const m = buildKerasApp(tf, { family: 'mobilenet_v1', alpha, includeTop });
      expect(m.countParams(), `${alpha} top ${includeTop}`).toBe(n);
      m.dispose();
    }
    expect(() => buildKerasApp(tf, { family: 'mobilenet_v1', alpha: 0.35, includeTop: false })).toThrow(/alpha must be one of 0.25, 0.5, 0.75, 1/);
  });

  it('--unfreeze counts its 13 depthwise-separable blocks (and the stem)', async () => {
    const tf = await getTf();
    const m = buildKerasApp(tf, { family: 'mobilenet_v1', alpha: 0.25, includeTop: false });
    const topology = m.toJSON(null, false) as any;
    m.dispose();
    const groups = layerGroups(topology).filter((g) => g.weighted);
    expect(groups.map((g) => g.name)).toEqual(['stem', ...Array.from({ length: 13 }, (_, i) => `conv_block_${i + 1}`)]);
    expect(groups[0]!.layers).toEqual(['conv1_pad', 'conv1', 'conv1_bn', 'conv1_relu']);
    expect(groups[2]!.layers).toEqual(['conv_pad_2', 'conv_dw_2', 'conv_dw_2_bn', 'conv_dw_2_relu', 'conv_pw_2', 'conv_pw_2_bn', 'conv_pw_2_relu']);
    const eight = groupsToUnfreeze(topology, 8);
    expect(eight.map((g) => g.name)).toEqual(Array.from({ length: 8 }, (_, i) => `conv_block_${i + 6}`));
    expect(eight.flatMap((g) => g.layers)).toHaveLength(7 + 5 * 6 + 7 + 6);
  });

  it('loads Keras-layout .h5 weights by name, and `summary` prints the Keras count', async () => {
    const spec = { family: 'mobilenet_v1' as const, alpha: 0.25, includeTop: false };
    const file = path.join(tmpDir(), 'w.h5');
    const fills = await writeAppH5(spec, file, { shuffle: true, extraLayer: true });
    const a = await kerasAppArtifacts(spec, file);
    expect(a.weightSpecs.length).toBe(fills.size);
    const bb = await loadBackbone('mobilenet_v1_0.25', { weights: file });
    expect(bb.params).toBe(218_544);
    expect(bb.note).toBe('cut at conv_pw_13_relu, global avg pooling');
    const r = await runCli(['summary', 'mobilenet_v1_0.75']);
    expect(r.stdout).toContain('Total params: 2,601,976');
  });

  it('an import of the wrong network or width is refused with the reason', async () => {
    if (!hasShared(V1, 'import of the wrong width')) return;
    await expect(importModel(V1, 'mobilenet_v1_0.50')).rejects.toThrow(/does not fit mobilenet_v1_0.50: conv1\/kernel has shape \[3,3,3,24\], the architecture needs \[3,3,3,16\]/);
    if (hasShared(MOBILENET, 'import of MobileNetV2 as v1')) {
      await expect(importModel(MOBILENET, 'mobilenet_v1_0.75')).rejects.toThrow(BackboneUnavailableError);
      await expect(importModel(MOBILENET, 'mobilenet_v1_0.75')).rejects.toThrow(/has no layer 'conv_pw_13_relu'/);
    }
  });
});

describe.runIf(hasShared(V1, 'MobileNet v1 0.75 (shared TF.js copy)'))('MobileNet v1 0.75 from ../shared', () => {
  it('`tlearn models import` takes the older Keras 2.1 TF.js layout; the zoo entry then gives 768-d features', async () => {
    const home = tmpDir();
    const r = await runCli(['models', 'import', V1, '--name', 'mobilenet_v1_0.75'], { TLEARN_HOME: home, TLEARN_MIRROR: 'http://127.0.0.1:9' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/imported .* as mobilenet_v1_0.75 into .* \(56 files\)/);
    const saved = process.env.TLEARN_HOME;
    process.env.TLEARN_HOME = home;
    try {
      const bb = await loadBackbone('mobilenet_v1_0.75');
      expect([bb.name, bb.params, bb.preprocessing, bb.note]).toEqual(['mobilenet_v1_0.75', 1_832_976, 'tf', 'cut at conv_pw_13_relu, global avg pooling']);
      const runner = await createRunner(bb.artifacts!, { inputSize: [224, 224] });
      expect(runner.outputDim).toBe(768);
      await runner.close();
      const list = await runCli(['models', 'list'], { TLEARN_HOME: home });
      expect(list.stdout).toMatch(/mobilenet_v1_0\.75 .*yes \(10\.\d MB, import\)/);
    } finally {
      process.env.TLEARN_HOME = saved;
    }
  });

  it('the Keras .h5 path (our builder, Keras names) computes what the TF.js copy computes', async () => {
    const shared = await readLayersModel(V1);
    const spec = { family: 'mobilenet_v1' as const, alpha: 0.75, includeTop: true };
    const file = path.join(tmpDir(), 'v1.h5');
    await writeAppH5(spec, file, { source: shared });
    const built = await kerasAppArtifacts(spec, file);
    const ort = await import('onnxruntime-node');
    const x = Float32Array.from({ length: 224 * 224 * 3 }, (_, i) => Math.sin(i * 0.37));
    const run = async (bytes: Uint8Array) => (await (await ort.InferenceSession.create(bytes)).run({ input: new ort.Tensor('float32', x, [1, 224, 224, 3]) })).output!.data as Float32Array;
    const ref = await run(layersModelToOnnx(shared).bytes);
    const out = await run(layersModelToOnnx(built).bytes);
    expect(out.length).toBe(1000);
    let max = 0;
    for (let i = 0; i < 1000; i++) max = Math.max(max, Math.abs(out[i]! - ref[i]!));
    expect(max).toBeLessThan(1e-5);
  });

  it('its 1000-class top names sensible ImageNet classes on Coral images and on ants/bees', async () => {
    const labels: string[] = JSON.parse(await fs.readFile(path.join(V1, 'metadata.json'), 'utf8')).labels;
    expect(labels).toHaveLength(1000);
    const runner = await createRunner(await readLayersModel(V1), { inputSize: [224, 224] });
    const top = async (file: string, k = 5) => {
      const y = await runner.run(preprocess(await decodeImage(file, { width: 224, height: 224 }), 'tf'), 1);
      return [...y].map((p, i) => ({ label: labels[i]!, p })).sort((a, b) => b.p - a.p).slice(0, k);
    };
    try {
      if (hasShared(CORAL, 'Coral test images')) {
        const cat = await top(path.join(CORAL, 'cat.bmp'));
        expect(cat[0]!.label).toBe('Egyptian cat'); // measured: Egyptian cat 0.653, tiger cat 0.213, tabby 0.119
        expect(cat.slice(0, 3).map((t) => t.label.split(',')[0])).toEqual(expect.arrayContaining(['tiger cat', 'tabby']));
        const bird = await top(path.join(CORAL, 'bird.bmp'));
        expect(bird[0]!.label).toBe('chickadee'); // measured 1.000
        expect(bird[0]!.p).toBeGreaterThan(0.9);
      }
      if (hasShared(HYMENOPTERA, 'ants/bees')) {
        const rate = async (cls: 'ants' | 'bees', want: string) => {
          const dir = path.join(HYMENOPTERA, 'val', cls);
          const files = readdirSync(dir).sort();
          let top1 = 0;
          let top5 = 0;
          for (const f of files) {
            const t = await top(path.join(dir, f));
            if (t[0]!.label === want) top1++;
            if (t.some((x) => x.label === want)) top5++;
          }
          return { top1: top1 / files.length, top5: top5 / files.length, n: files.length };
        };
        const ants = await rate('ants', 'ant, emmet, pismire');
        const bees = await rate('bees', 'bee');
        console.log(`MobileNet v1 0.75 ImageNet top on hymenoptera val: ants ${JSON.stringify(ants)}, bees ${JSON.stringify(bees)}`);
        expect(ants.top5).toBeGreaterThan(0.6);
        expect(bees.top5).toBeGreaterThan(0.6);
        expect(ants.top1).toBeGreaterThan(0.4);
        expect(bees.top1).toBeGreaterThan(0.4);
      }
    } finally {
      await runner.close();
    }
  });
});
