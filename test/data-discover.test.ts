import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { DatasetError, loadImageFolder } from '../src/data/discover.js';
import { CALTECH, CALTECH_EXCLUDE, HYMENOPTERA, hasShared, makeDataset, tmpDir } from './helpers.js';

async function touchJpeg(file: string) {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await sharp({ create: { width: 8, height: 8, channels: 3, background: '#888' } }).jpeg().toFile(file);
}

describe('loadImageFolder', () => {
  it('finds class folders sorted, any-case extensions, nested folders, and reports everything it skips', async () => {
    const root = tmpDir();
    await makeDataset(root, { classes: { zebra: 2, ant: 3 } });
    await touchJpeg(path.join(root, 'ant', 'UPPER.JPEG'));
    await touchJpeg(path.join(root, 'ant', 'sub', 'nested.Jpg'));
    await fs.writeFile(path.join(root, 'ant', 'notes.txt'), 'hello');
    await fs.writeFile(path.join(root, 'ant', '.DS_Store'), 'x');
    await fs.writeFile(path.join(root, 'README'), 'top-level file');
    // a JPEG without an extension is recognised by its content; other extensionless files are skipped
    await fs.copyFile(path.join(root, 'ant', 'UPPER.JPEG'), path.join(root, 'zebra', 'noext'));
    await fs.writeFile(path.join(root, 'zebra', 'junk'), 'not an image');
    const ds = await loadImageFolder(root);
    expect(ds.classes).toEqual(['ant', 'zebra']);
    const names = ds.images.map((i) => `${ds.classes[i.label]}/${path.relative(path.join(root, ds.classes[i.label]!), i.path)}`);
    expect(names).toEqual(['ant/UPPER.JPEG', 'ant/img_000.jpg', 'ant/img_001.jpg', 'ant/img_002.jpg', 'ant/sub/nested.Jpg', 'zebra/img_000.jpg', 'zebra/img_001.jpg', 'zebra/noext']);
    const skipped = Object.fromEntries(ds.skipped.map((s) => [path.relative(root, s.path), s.reason]));
    expect(skipped).toEqual({
      'ant/.DS_Store': 'hidden file',
      'ant/notes.txt': 'not an image file (extension .txt)',
      README: 'file outside any class folder',
      'zebra/junk': 'no file extension and not an image (text)',
    });
  });

  it('excludes classes and rejects unknown names in --exclude', async () => {
    const root = await makeDataset(tmpDir(), { classes: { a: 2, b: 2, c: 2 } });
    const ds = await loadImageFolder(root, { exclude: ['b'] });
    expect(ds.classes).toEqual(['a', 'c']);
    expect(ds.excluded).toEqual(['b']);
    expect(ds.images.every((i) => i.label < 2)).toBe(true);
    await expect(loadImageFolder(root, { exclude: ['b', 'nope'] })).rejects.toThrow(/--exclude names 'nope', not a class/);
  });

  it('drops empty class folders with a warning', async () => {
    const root = await makeDataset(tmpDir(), { classes: { a: 2, b: 2 } });
    await fs.mkdir(path.join(root, 'empty'));
    const ds = await loadImageFolder(root);
    expect(ds.classes).toEqual(['a', 'b']);
    expect(ds.warnings).toEqual(["class folder 'empty' has no images; class dropped"]);
  });

  it('gives clear errors for a missing folder, a file, no class folders and a single class', async () => {
    await expect(loadImageFolder('/nonexistent/tlearn')).rejects.toThrow(DatasetError);
    await expect(loadImageFolder('/nonexistent/tlearn')).rejects.toThrow(/does not exist/);
    const root = tmpDir();
    await fs.writeFile(path.join(root, 'f.txt'), '');
    await expect(loadImageFolder(path.join(root, 'f.txt'))).rejects.toThrow(/is not a folder/);
    await expect(loadImageFolder(root)).rejects.toThrow(/has no sub-folders/);
    const one = await makeDataset(tmpDir(), { classes: { only: 3 } });
    await expect(loadImageFolder(one)).rejects.toThrow(/only one class/);
  });

  it('recognises a pre-split dataset with train/, valid/ and test/', async () => {
    const root = tmpDir();
    await makeDataset(path.join(root, 'train'), { classes: { cat: 3, dog: 3 } });
    await makeDataset(path.join(root, 'valid'), { classes: { cat: 1, dog: 2 } });
    await makeDataset(path.join(root, 'test'), { classes: { cat: 1, dog: 1 } });
    const ds = await loadImageFolder(root);
    expect(ds.classes).toEqual(['cat', 'dog']);
    expect(ds.predefined!.train).toHaveLength(6);
    expect(ds.predefined!.val).toHaveLength(3);
    expect(ds.predefined!.test).toHaveLength(2);
    expect(ds.images).toHaveLength(11);
  });

  it.runIf(hasShared(CALTECH, 'Caltech-101 discovery test'))('finds the notebook\'s 97 classes and 6,209 images in Caltech-101', async () => {
    const ds = await loadImageFolder(CALTECH, { exclude: CALTECH_EXCLUDE });
    expect(ds.classes).toHaveLength(97);
    expect(ds.images).toHaveLength(6209);
    expect(ds.skipped).toEqual([]);
    const all = await loadImageFolder(CALTECH);
    expect(all.classes).toHaveLength(102);
    // BACKGROUND_Google/tmp has no extension but is a JPEG
    expect(all.images.some((i) => i.path.endsWith(path.join('BACKGROUND_Google', 'tmp')))).toBe(true);
    expect(all.images).toHaveLength(9145);
  });

  it.runIf(hasShared(HYMENOPTERA, 'ants/bees discovery test'))('reads the ants/bees train/val layout', async () => {
    const ds = await loadImageFolder(HYMENOPTERA);
    expect(ds.classes).toEqual(['ants', 'bees']);
    expect(ds.predefined!.train).toHaveLength(245);
    expect(ds.predefined!.val).toHaveLength(153);
    expect(ds.predefined!.test).toBeUndefined();
  });
});
