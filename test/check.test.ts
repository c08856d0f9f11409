import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkDataset, formatCheck } from '../src/data/check.js';
import { loadImageFolder } from '../src/data/discover.js';
import { hammingDistance, nearPairs, probeImage } from '../src/image/probe.js';
import { probeCacheFile } from '../src/image/probe-cache.js';
import { splitDataset } from '../src/data/split.js';
import { trainFromFolder } from '../src/train/run.js';
import { CALTECH, CALTECH_EXCLUDE, hasShared, makeDataset, makeTinyBackbone, runCli, tmpDir } from './helpers.js';

let data: string;

beforeAll(async () => {
  data = await makeDataset(tmpDir(), { classes: { cats: 15, dogs: 5 }, seed: 21, size: 64 });
  // a near-duplicate (smaller, recompressed) of one cat, and a cat filed under dogs too (a label conflict)
  await sharp(path.join(data, 'cats', 'img_004.jpg')).resize(60, 60).jpeg({ quality: 50 }).toFile(path.join(data, 'cats', 'near_004.jpg'));
  await fs.copyFile(path.join(data, 'cats', 'img_007.jpg'), path.join(data, 'dogs', 'also_a_cat.jpg'));
});

describe('tlearn check', () => {
  it('reports classes, formats, identical files across classes, near-duplicates with their splits, small images and imbalance', async () => {
    const c = await checkDataset(data, { seed: 3 });
    expect(c.trainable).toBe(true);
    expect(c.classes).toEqual([
      { name: 'cats', images: 16, usable: 16 },
      { name: 'dogs', images: 6, usable: 6 },
    ]);
    expect(c.audit!.formats).toEqual({ jpeg: 22 });
    expect(c.audit!.duplicates.map((d) => [d.paths.map((p) => path.relative(data, p)), d.classes])).toEqual([[['cats/img_007.jpg', 'dogs/also_a_cat.jpg'], ['cats', 'dogs']]]);
    expect(c.blocking).toEqual([`1 group of identical files has different labels (label conflict): cats/img_007.jpg = dogs/also_a_cat.jpg`]);
    // the near-duplicate pair, and in which splits the seed puts them
    const near = c.audit!.decoded!.nearDuplicates.find((n) => n.paths.some((p) => p.endsWith('near_004.jpg')));
    expect(near!.paths.map((p) => path.relative(data, p))).toEqual(['cats/img_004.jpg', 'cats/near_004.jpg']);
    expect(near!.distance).toBeLessThanOrEqual(8);
    const split = splitDataset(await loadImageFolder(data), { seed: 3 });
    const splitOf = (p: string) => (['train', 'val', 'test'] as const).find((s) => split[s].some((i) => i.path === p));
    expect(near!.splits).toEqual([...new Set(near!.paths.map(splitOf))].sort());
    expect(c.audit!.decoded!.small).toHaveLength(22);
    expect(c.warnings.join('\n')).toMatch(/22 images are smaller than the model's input 224x224/);
    // 16 / 6 = 2.7x: below the 3x warning
    expect(c.audit!.imbalance).toEqual({ largest: { name: 'cats', images: 16 }, smallest: { name: 'dogs', images: 6 }, ratio: 16 / 6 });
    expect(c.warnings.join('\n')).not.toMatch(/imbalanced/);
    const text = formatCheck(c).join('\n');
    expect(text).toMatch(/identical files: 0 groups within a class, 1 across classes \(label conflicts\)/);
    expect(text).toMatch(/cats\/img_004\.jpg ~ cats\/near_004\.jpg {2}\(distance \d/);
    expect(text).toMatch(/problem: 1 group of identical files has different labels/);
    // a smaller model input: no small images; the probes were remembered
    const again = await checkDataset(data, { seed: 3, inputSize: [32, 32] });
    expect(again.audit!.decoded!.small).toHaveLength(0);
    expect(Object.keys(JSON.parse(await fs.readFile(probeCacheFile(), 'utf8')).entries)).toHaveLength(21);
  });

  it('warns about imbalance from 3x on, and about a class with one image', async () => {
    const d = await makeDataset(tmpDir(), { classes: { big: 9, small: 3, tiny: 1 }, seed: 2 });
    const c = await checkDataset(d);
    expect(c.warnings).toContain("classes are imbalanced: 'big' has 9 images, 'tiny' 1 (9.0x); consider --class-weights auto");
    expect(c.warnings).toContain("class 'tiny' has only 1 usable image: it can be in one split only");
  });

  it('tlearn train stops on a label conflict with a clear message, and goes on with --force', async () => {
    const backbone = await makeTinyBackbone(tmpDir());
    const r = await runCli(['train', data, '--backbone', backbone, '--epochs', '2', '--out', path.join(tmpDir(), 'r')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/tlearn: error: the data check found a problem that would make the model or its test accuracy wrong:\n {2}1 group of identical files has different labels \(label conflict\): cats\/img_007\.jpg = dogs\/also_a_cat\.jpg\nfix the data \(see tlearn check\), or pass --force to train anyway/);
    const forced = await trainFromFolder({ data, backbone, epochs: 2, batchSize: 8, force: true, out: path.join(tmpDir(), 'r2') });
    expect(forced.metrics.dataset.images).toBe(22);
  });

  it('perceptual hashes: the same picture resized and recompressed is near, another picture is far', async () => {
    const d = await makeDataset(tmpDir(), { classes: { a: 2 }, seed: 4, size: 96 });
    const one = await fs.readFile(path.join(d, 'a', 'img_000.jpg'));
    const other = await fs.readFile(path.join(d, 'a', 'img_001.jpg'));
    const small = await sharp(one).resize(50, 50).jpeg({ quality: 50 }).toBuffer();
    const [p1, p2, p3] = await Promise.all([probeImage(one, 'one'), probeImage(small, 'small'), probeImage(other, 'other')]);
    expect(p1.width).toBe(96);
    expect(p2.width).toBe(50);
    expect(hammingDistance(p1.dhash, p2.dhash)).toBeLessThanOrEqual(8);
    expect(hammingDistance(p1.dhash, p3.dhash)).toBeGreaterThan(8);
    expect(nearPairs([p1.dhash, p3.dhash, p2.dhash])).toEqual([[0, 2, hammingDistance(p1.dhash, p2.dhash)]]);
  });

  it.runIf(hasShared(CALTECH, 'Caltech-101 check'))('finds the near-duplicates Caltech-101 holds, in seconds once remembered', async () => {
    const c = await checkDataset(CALTECH, { exclude: CALTECH_EXCLUDE });
    expect(c.usable).toBe(6209);
    expect(c.skipped).toEqual([]);
    expect(c.audit!.duplicates).toEqual([]);
    expect(c.audit!.decoded!.nearDuplicates.length).toBeGreaterThan(50);
    const t = performance.now();
    const again = await checkDataset(CALTECH, { exclude: CALTECH_EXCLUDE });
    expect(again.audit!.decoded!.nearDuplicates).toEqual(c.audit!.decoded!.nearDuplicates);
    console.log(`Caltech-97 check: first ${c.seconds.toFixed(1)} s, again ${((performance.now() - t) / 1000).toFixed(1)} s; ${c.audit!.decoded!.nearDuplicates.length} near-duplicate pairs, ${c.audit!.decoded!.nearCrossSplit} across splits`);
  });
});
