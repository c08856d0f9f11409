import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { auditDataset, formatAudit } from '../src/data/audit.js';
import { loadImageFolder } from '../src/data/discover.js';
import { splitDataset } from '../src/data/split.js';
import { ContentHashIndex } from '../src/data/hash-index.js';
import { HYMENOPTERA, hasShared, makeDataset, tmpDir } from './helpers.js';

describe('dataset audit', () => {
  it('reports formats, rare formats, extension mismatches and identical files across splits and classes', async () => {
    const root = await makeDataset(tmpDir(), { classes: { cat: 60, dog: 60 }, seed: 4 });
    // a PNG named .jpg, and the same picture in both classes
    await makeDataset(path.join(root, '_png'), { classes: { x: 1 }, ext: '.png' });
    await fs.rename(path.join(root, '_png', 'x', 'img_000.png'), path.join(root, 'cat', 'really_png.jpg'));
    await fs.rm(path.join(root, '_png'), { recursive: true });
    await fs.copyFile(path.join(root, 'cat', 'img_001.jpg'), path.join(root, 'dog', 'copy_of_cat.jpg'));
    const ds = await loadImageFolder(root);
    const split = splitDataset(ds, { seed: 1 });
    const a = await auditDataset(ds, split, await ContentHashIndex.open(path.join(tmpDir(), 'h.json')));
    expect(a.formats).toEqual({ jpeg: 121, png: 1 });
    expect(a.rareFormats.map((f) => path.basename(f.path))).toEqual(['really_png.jpg']);
    expect(a.extensionMismatches.map((m) => `${path.basename(m.path)} ${m.extension} ${m.format}`)).toEqual(['really_png.jpg .jpg png']);
    expect(a.duplicates).toHaveLength(1);
    expect(a.duplicates[0]!.classes.sort()).toEqual(['cat', 'dog']);
    expect(a.conflictingLabels).toBe(1);
    const text = formatAudit(a, root).join('\n');
    expect(text).toMatch(/formats: 121 jpeg, 1 png/);
    expect(text).toMatch(/content does not match the extension: cat\/really_png.jpg \(png\)/);
    expect(text).toMatch(/identical files: 1 group .* 1 with different labels\): cat\/img_001.jpg = dog\/copy_of_cat.jpg/);
  });

  it.runIf(hasShared(HYMENOPTERA, 'ants/bees audit'))('names the GIF placeholder among the ants/bees photos', async () => {
    const ds = await loadImageFolder(HYMENOPTERA);
    const a = await auditDataset(ds, splitDataset(ds), await ContentHashIndex.open(path.join(tmpDir(), 'h.json')));
    expect(a.formats).toEqual({ jpeg: 397, gif: 1 });
    expect(a.rareFormats.map((f) => path.relative(HYMENOPTERA, f.path))).toEqual([path.join('train', 'ants', 'imageNotFound.gif')]);
  });
});
