import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { readLayersModel } from '../src/backbones/layers-model.js';
import { augmentRng, decodeAugmented, decodeVariant, parseAugment, transformRgb, TTA_VARIANTS } from '../src/image/augment.js';
import { decodeImage } from '../src/image/decode.js';
import { kerasAppTopology } from '../src/backbones/keras-apps/artifacts.js';
import { groupsToUnfreeze, layerGroups } from '../src/engine/layer-groups.js';
import { trainFromFolder } from '../src/train/run.js';
import { loadClassifier } from '../src/classifier/load.js';
import { predictImages } from '../src/classifier/predict.js';
import { makeDataset, makeTinyBackbone, runCli, tmpDir } from './helpers.js';

async function testImage(): Promise<Buffer> {
  // left half red, right half blue, 80x60
  const left = await sharp({ create: { width: 40, height: 60, channels: 3, background: '#f00' } }).png().toBuffer();
  return sharp({ create: { width: 80, height: 60, channels: 3, background: '#00f' } }).composite([{ input: left, left: 0, top: 0 }]).png().toBuffer();
}

describe('augmentation', () => {
  it('parses specs and rejects bad ones', () => {
    expect(parseAugment(true)).toEqual({ crop: 0.6, flip: true, rotate: 10, color: 0.2 });
    expect(parseAugment('flip,crop=0.5')).toEqual({ crop: 0.5, flip: true, rotate: 0, color: 0 });
    expect(parseAugment(undefined)).toBeUndefined();
    expect(() => parseAugment('crop=2')).toThrow(/--augment crop needs a value in \[0.05, 1\]/);
    expect(() => parseAugment('zoom=2')).toThrow(/unknown part 'zoom'/);
  });

  it('is seeded: the same image, epoch and index give the same result; another epoch differs', async () => {
    const img = await testImage();
    const o = { width: 32, height: 32 };
    const aug = parseAugment(true)!;
    const a = await decodeAugmented(img, o, aug, augmentRng(1, 1, 5));
    const b = await decodeAugmented(img, o, aug, augmentRng(1, 1, 5));
    const c = await decodeAugmented(img, o, aug, augmentRng(1, 2, 5));
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(Buffer.from(a).equals(Buffer.from(c))).toBe(false);
    expect(a.length).toBe(32 * 32 * 3);
  });

  it('flips mirror the image; crops keep the middle', async () => {
    const img = await testImage();
    const o = { width: 16, height: 16 };
    const plain = await decodeVariant(img, o, TTA_VARIANTS[0]!);
    const flipped = await decodeVariant(img, o, TTA_VARIANTS[1]!);
    expect(plain[0]).toBeGreaterThan(200); // red at the left
    expect(flipped[0]).toBeLessThan(50); // blue at the left after the flip
    expect(flipped[2]).toBeGreaterThan(200);
    expect(Buffer.from(plain).equals(Buffer.from(await decodeImage(img, o)))).toBe(true);
  });

  it('the rotate/flip/colour pass: identity leaves pixels as they are; brightness scales them', () => {
    const S = 8;
    const src = Uint8Array.from({ length: S * S * 3 }, (_, i) => (i * 7) % 200);
    const out = new Uint8Array(S * S * 3);
    transformRgb(src, S, out, S, S, { angle: 0, flip: false, brightness: 1, contrast: 1, saturation: 1 });
    expect(Array.from(out)).toEqual(Array.from(src));
    transformRgb(src, S, out, S, S, { angle: 0, flip: true, brightness: 1, contrast: 1, saturation: 1 });
    expect(Array.from(out.subarray(0, 3))).toEqual(Array.from(src.subarray((S - 1) * 3, S * 3)));
    transformRgb(src, S, out, S, S, { angle: 0, flip: false, brightness: 0.5, contrast: 1, saturation: 1 });
    expect(out[3]).toBe(Math.round(src[3]! * 0.5));
  });
});

describe('layer groups and --unfreeze', () => {
  it('groups MobileNetV2 by block and picks the top N, a layer upwards, or all', async () => {
    const { topology } = await kerasAppTopology({ family: 'mobilenet_v2', alpha: 0.35, includeTop: false });
    const groups = layerGroups(topology).filter((g) => g.weighted).map((g) => g.name);
    expect(groups[0]).toBe('stem');
    expect(groups.slice(-3)).toEqual(['block_15', 'block_16', 'top']);
    expect(groupsToUnfreeze(topology, 2).map((g) => g.name)).toEqual(['block_16', 'top']);
    expect(groupsToUnfreeze(topology, 'block_14_project').map((g) => g.name)).toEqual(['block_14', 'block_15', 'block_16', 'top']);
    expect(groupsToUnfreeze(topology, 'block_14_project')[0]!.layers).toEqual(['block_14_project', 'block_14_project_BN', 'block_14_add']);
    expect(groupsToUnfreeze(topology, 'all')).toHaveLength(groups.length);
    expect(() => groupsToUnfreeze(topology, 'nope')).toThrow(/no layer named 'nope'/);
    const resnet = (await kerasAppTopology({ family: 'resnet50', includeTop: false })).topology;
    expect(groupsToUnfreeze(resnet, 2).map((g) => g.name)).toEqual(['conv5_block2', 'conv5_block3']);
  });
});

describe('--mode finetune', () => {
  let data: string;
  let backbone: string;
  beforeAll(async () => {
    data = await makeDataset(tmpDir(), { classes: { red: 16, green: 16, blue: 16 }, seed: 17, size: 48 });
    backbone = await makeTinyBackbone(tmpDir());
  });

  it('trains the head, then the unfrozen top with the head (BatchNormalization frozen), checkpoints the best epoch', async () => {
    const r = await trainFromFolder({ data, backbone, mode: 'finetune', unfreeze: 2, epochs: 2, headEpochs: 15, headLr: 0.03, lr: 0.002, batchSize: 8, augment: parseAugment('flip,crop=0.7'), seed: 3, out: path.join(tmpDir(), 'ft') });
    const m: any = r.metrics;
    expect(m.mode).toBe('finetune');
    expect(m.finetune.unfrozenGroups).toEqual(['c2', 'c2_bn']);
    // c2 kernel (3*3*8*16) + bias (16) + head (16*3 + 3); BatchNormalization not trained
    expect(m.finetune.trainableParams).toBe(3 * 3 * 8 * 16 + 16 + 16 * 3 + 3);
    expect(m.test.accuracy).toBeGreaterThan(0.6);
    const before = await readLayersModel(backbone);
    const after = await readLayersModel(path.join(r.outDir, 'model'));
    const w = (a: typeof before, name: string) => {
      let off = 0;
      for (const s of a.weightSpecs) {
        const n = s.shape.reduce((x, y) => x * y, 1);
        if (s.name === name) return new Float32Array(a.weightData.slice(off, off + n * 4));
        off += n * 4;
      }
      throw new Error(name);
    };
    expect(Array.from(w(after, 'c1/kernel'))).toEqual(Array.from(w(before, 'c1/kernel')));
    expect(Array.from(w(after, 'c2_bn/gamma'))).toEqual(Array.from(w(before, 'c2_bn/gamma')));
    expect(Array.from(w(after, 'c2/kernel'))).not.toEqual(Array.from(w(before, 'c2/kernel')));
    expect((await fs.readdir(path.join(r.outDir, 'checkpoint'))).sort()).toEqual(['model.json', 'weights.bin']);
    // the shipped model predicts with the fine-tuned weights
    const p = await predictImages(await loadClassifier(r.outDir), [path.join(data, 'red', 'img_001.jpg')], { tta: true });
    expect(p.predictions[0]!.top[0]!.label).toBe('red');
  });

  it('CLI: --augment and --unfreeze errors are clear', async () => {
    const bad = await runCli(['train', data, '--backbone', backbone, '--mode', 'finetune', '--augment', 'spin=3', '--out', tmpDir()]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--augment: unknown part 'spin'/);
    const bad2 = await runCli(['train', data, '--backbone', backbone, '--mode', 'finetune', '--unfreeze', 'no_such_layer', '--epochs', '1', '--head-epochs', '1', '--out', tmpDir()]);
    expect(bad2.code).toBe(1);
    expect(bad2.stderr).toMatch(/--unfreeze: no layer named 'no_such_layer'/);
  });
});
