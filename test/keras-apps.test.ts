/**
 * Keras applications rebuilt in TypeScript: parameter counts as Keras prints them, and Keras-layout .h5 files
 * (written here, every weight a distinct constant, layers shuffled, an extra layer added) landing every weight
 * in the right layer of each architecture.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kerasAppArtifacts } from '../src/backbones/keras-apps/artifacts.js';
import { buildKerasApp, type KerasAppSpec } from '../src/backbones/keras-apps/build.js';
import { H5FormatError } from '../src/backbones/keras-apps/h5.js';
import { decodeWeights, readLayersModel } from '../src/backbones/layers-model.js';
import { findZooEntry } from '../src/backbones/zoo.js';
import { zooSummary } from '../src/models/zoo-summary.js';
import { getTf } from '../src/runtime/tfjs.js';
import { layersModelToOnnx } from '../src/onnx/convert.js';
import { MOBILENET, hasShared, runCli, tmpDir, writeAppH5 } from './helpers.js';

describe('Keras application architectures', () => {
  it('have the parameter counts Keras reports', async () => {
    const tf = await getTf();
    const cases: Array<[KerasAppSpec, number]> = [
      [{ family: 'vgg16', includeTop: true }, 138_357_544],
      [{ family: 'vgg16', includeTop: false }, 14_714_688],
      [{ family: 'resnet50', includeTop: true }, 25_636_712],
      [{ family: 'resnet50', includeTop: false }, 23_587_712],
      [{ family: 'mobilenet_v2', alpha: 1.0, includeTop: true }, 3_538_984],
      [{ family: 'mobilenet_v2', alpha: 1.4, includeTop: true }, 6_156_712],
      [{ family: 'mobilenet_v2', alpha: 0.35, includeTop: false }, 410_208],
    ];
    for (const [spec, n] of cases) {
      const m = buildKerasApp(tf, spec);
      expect(m.countParams(), JSON.stringify(spec)).toBe(n);
      m.dispose();
    }
  });

  it("the notebook's VGG16 transfer model: top replaced by a 97-way softmax, the rest frozen", async () => {
    const s = await zooSummary(findZooEntry('vgg16')!, 97);
    expect([s.total, s.trainable, s.nonTrainable]).toEqual([134_657_953, 397_409, 134_260_544]);
    const full = await zooSummary(findZooEntry('vgg16')!);
    expect(full.total).toBe(138_357_544);
    const r = await runCli(['summary', 'mobilenet_v2_1.0']);
    expect(r.stdout).toContain('Total params: 3,538,984');
    const v = await runCli(['summary', 'vgg16', '--classes', '97']);
    expect(v.stdout).toMatch(/Total params: 134,657,953\nTrainable params: 397,409\nNon-trainable params: 134,260,544/);
  });
});

describe('loading Keras .h5 weights', () => {
  const specs: Array<[string, KerasAppSpec]> = [
    ['MobileNetV2 0.35 without top', { family: 'mobilenet_v2', alpha: 0.35, includeTop: false }],
    ['MobileNetV2 1.0 with top', { family: 'mobilenet_v2', alpha: 1.0, includeTop: true }],
    ['ResNet50 with top', { family: 'resnet50', includeTop: true }],
    ['VGG16 without top', { family: 'vgg16', includeTop: false }],
    ['VGG16 with top', { family: 'vgg16', includeTop: true }],
  ];
  for (const [name, spec] of specs) {
    it(`${name}: every weight lands in its layer`, async () => {
      const file = path.join(tmpDir(), 'w.h5');
      const fills = await writeAppH5(spec, file, { shuffle: true, extraLayer: true, compress: true });
      const a = await kerasAppArtifacts(spec, file);
      const w = decodeWeights(a);
      expect(w.size).toBe(fills.size);
      for (const [key, value] of fills) {
        const got = w.get(key);
        expect(got, key).toBeDefined();
        expect(got!.data[0], key).toBeCloseTo(value, 6);
        expect(got!.data[got!.data.length - 1], key).toBeCloseTo(value, 6);
      }
    });
  }

  it('explains a file that does not fit the architecture', async () => {
    const file = path.join(tmpDir(), 'w.h5');
    await writeAppH5({ family: 'mobilenet_v2', alpha: 0.35, includeTop: false }, file);
    await expect(kerasAppArtifacts({ family: 'mobilenet_v2', alpha: 0.5, includeTop: false }, file)).rejects.toThrow(/has shape \[.*\], the architecture needs/);
    await expect(kerasAppArtifacts({ family: 'vgg16', includeTop: false }, file)).rejects.toThrow(/has no weights for layer 'block1_conv1'/);
    await expect(kerasAppArtifacts({ family: 'vgg16', includeTop: false }, path.join(tmpDir(), 'missing.h5'))).rejects.toThrow(H5FormatError);
  });

  it.runIf(hasShared(MOBILENET, 'Keras MobileNetV2 vs the shared TF.js copy'))('MobileNetV2-0.35 built in TypeScript with Keras-layout weights computes what the shared TF.js model computes', async () => {
    const shared = await readLayersModel(MOBILENET);
    const file = path.join(tmpDir(), 'mn.h5');
    await writeAppH5({ family: 'mobilenet_v2', alpha: 0.35, includeTop: false }, file, { source: shared });
    const built = await kerasAppArtifacts({ family: 'mobilenet_v2', alpha: 0.35, includeTop: false }, file);
    const ort = await import('onnxruntime-node');
    const x = Float32Array.from({ length: 224 * 224 * 3 }, (_, i) => Math.sin(i * 0.37));
    const run = async (bytes: Uint8Array) => (await (await ort.InferenceSession.create(bytes)).run({ input: new ort.Tensor('float32', x, [1, 224, 224, 3]) })).output!.data as Float32Array;
    const ref = await run(layersModelToOnnx(shared).bytes);
    const out = await run(layersModelToOnnx(built).bytes);
    // the shared copy ends in global average pooling; ours ends at out_relu (7x7x1280)
    for (let c = 0; c < 1280; c++) {
      let s = 0;
      for (let p = 0; p < 49; p++) s += out[p * 1280 + c]!;
      expect(Math.abs(s / 49 - ref[c]!)).toBeLessThan(1e-4);
    }
  });
});
