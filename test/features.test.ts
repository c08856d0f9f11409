import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadBackbone, type Backbone } from '../src/backbones/load.js';
import { loadImageFolder } from '../src/data/discover.js';
import { clearFeaturesCache, FeatureCache, featuresCacheUsage, featuresRoot } from '../src/features/cache.js';
import { createFeatureExtractor, extractFeatures } from '../src/features/extract.js';
import { FeatureStore } from '../src/features/store.js';
import { sha256 } from '../src/util/hash.js';
import { makeDataset, makeTinyBackbone, tmpDir } from './helpers.js';

let backbone: Backbone;
let paths: string[];

beforeAll(async () => {
  backbone = await loadBackbone(await makeTinyBackbone(tmpDir()));
  const ds = await loadImageFolder(await makeDataset(tmpDir(), { classes: { red: 6, green: 6 } }));
  paths = ds.images.map((i) => i.path);
});

describe('feature extraction and its cache', () => {
  it('runs the backbone once per image; a second pass reads every vector from the cache', async () => {
    await clearFeaturesCache();
    const fx = await createFeatureExtractor(backbone);
    expect(fx.runtime).toMatch(/^onnxruntime/);
    expect(fx.dim).toBe(16);
    const a = await fx.extract(paths);
    expect([a.computed, a.fromCache]).toEqual([12, 0]);
    const b = await fx.extract(paths);
    expect([b.computed, b.fromCache]).toEqual([0, 12]);
    expect(Array.from(b.features)).toEqual(Array.from(a.features));
    await fx.close();
    const usage = await featuresCacheUsage();
    expect(usage.entries).toBe(12);
    // the same content at another path is a cache hit too (keyed by content hash)
    const copy = path.join(tmpDir(), 'copy.jpg');
    await fs.copyFile(paths[0]!, copy);
    const c = await extractFeatures([copy], backbone);
    expect(c.fromCache).toBe(1);
    expect(Array.from(c.features)).toEqual(Array.from(a.features.subarray(0, 16)));
  });

  it('never reads back a foreign entry; ignores and counts the former one-file-per-vector layout', async () => {
    await clearFeaturesCache();
    const a = await extractFeatures(paths.slice(0, 3), backbone);
    expect((await featuresCacheUsage()).extractors).toBe(1);
    // the same content hash under another dimension or extractor key is absent, not misread
    const hash = sha256(await fs.readFile(paths[0]!));
    const ek = Object.keys(FeatureStore.at(featuresRoot()).usage().extractors)[0]!;
    expect(Array.from((await new FeatureCache(ek, 16).get(hash))!)).toEqual(Array.from(a.features.subarray(0, 16)));
    expect(await new FeatureCache(ek, 8).get(hash)).toBeUndefined();
    expect(await new FeatureCache('another-key', 16).get(hash)).toBeUndefined();
    // a cache left by an older tlearn (one .f32 file per vector) is not read, but shown and cleared
    const old = path.join(featuresRoot(), '0123456789abcdef0123', 'ab');
    await fs.mkdir(old, { recursive: true });
    await fs.writeFile(path.join(old, 'ab12.f32'), Buffer.alloc(64));
    const usage = await featuresCacheUsage();
    expect([usage.entries, usage.legacyFiles]).toEqual([3, 1]);
    const b = await extractFeatures(paths.slice(0, 3), backbone);
    expect([b.computed, b.fromCache]).toEqual([0, 3]);
    expect(Array.from(b.features)).toEqual(Array.from(a.features));
    const cleared = await clearFeaturesCache();
    expect([cleared.entries, cleared.legacyFiles]).toEqual([3, 1]);
    expect((await featuresCacheUsage()).entries).toBe(0);
    const cache = new FeatureCache('k', 4, tmpDir());
    await expect(cache.put('ab', new Float32Array(3))).rejects.toThrow(/3 values, expected 4/);
  });

  it('keys the cache on preprocessing too', async () => {
    await clearFeaturesCache();
    await extractFeatures(paths.slice(0, 2), backbone);
    const other = await extractFeatures(paths.slice(0, 2), { ...backbone, preprocessing: 'unit' });
    expect(other.computed).toBe(2);
    expect((await featuresCacheUsage()).extractors).toBe(2);
  });

  it('reports unreadable files and still extracts the rest', async () => {
    const bad = path.join(tmpDir(), 'broken.jpg');
    await fs.writeFile(bad, 'not a jpeg');
    const r = await extractFeatures([paths[0]!, bad, path.join(tmpDir(), 'gone.jpg'), paths[1]!], backbone, { cache: false });
    expect(r.ok).toEqual([true, false, false, true]);
    expect(r.failed.map((f) => path.basename(f.path))).toEqual(['broken.jpg', 'gone.jpg']);
    expect(r.failed[0]!.reason).toMatch(/not a readable image/);
    expect(r.failed[1]!.reason).toMatch(/ENOENT/);
  });

  it('the tfjs fallback gives the same features as onnxruntime', async () => {
    const ort = await extractFeatures(paths.slice(0, 4), backbone, { cache: false });
    process.env.TLEARN_RUNTIME = 'tfjs';
    try {
      const fx = await createFeatureExtractor(backbone, { cache: false });
      expect(fx.runtime).toMatch(/^tfjs/);
      const t = await fx.extract(paths.slice(0, 4));
      await fx.close();
      const maxAbs = Math.max(...Array.from(ort.features).map(Math.abs));
      const diff = Math.max(...Array.from(t.features).map((v, i) => Math.abs(v - ort.features[i]!)));
      expect(diff).toBeLessThanOrEqual(1e-4 * maxAbs + 1e-5);
    } finally {
      delete process.env.TLEARN_RUNTIME;
    }
  });
});

describe('content hash index', () => {
  it('skips reading unchanged files and re-hashes changed ones', async () => {
    const { ContentHashIndex } = await import('../src/data/hash-index.js');
    const dir = tmpDir();
    const f = path.join(dir, 'a.bin');
    await fs.writeFile(f, 'one');
    const idx = await ContentHashIndex.open(path.join(dir, 'index.json'));
    const first = await idx.hash(f);
    expect(first.bytes?.toString()).toBe('one');
    await idx.save();
    const again = await (await ContentHashIndex.open(path.join(dir, 'index.json'))).hash(f);
    expect(again).toEqual({ hash: first.hash });
    await fs.writeFile(f, 'two!');
    const changed = await idx.hash(f);
    expect(changed.bytes?.toString()).toBe('two!');
    expect(changed.hash).not.toBe(first.hash);
  });

  it('a second extraction finds cached features without reading the images', async () => {
    await clearFeaturesCache();
    await extractFeatures(paths.slice(0, 4), backbone);
    const fsMod = await import('node:fs');
    const original = fsMod.promises.readFile;
    const read: string[] = [];
    (fsMod.promises as any).readFile = (p: any, ...rest: any[]) => {
      read.push(String(p));
      return (original as any)(p, ...rest);
    };
    try {
      const r = await extractFeatures(paths.slice(0, 4), backbone);
      expect(r.fromCache).toBe(4);
    } finally {
      (fsMod.promises as any).readFile = original;
    }
    expect(read.filter((p) => p.endsWith('.jpg'))).toEqual([]);
  });
});
