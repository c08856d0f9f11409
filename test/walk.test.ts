import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { loadImageFolder, findImages } from '../src/data/discover.js';
import { describeContent, sniffImageFormat } from '../src/image/formats.js';
import { makeDataset, tmpDir } from './helpers.js';

const rel = (root: string, p: string) => path.relative(root, p);
const reasons = (root: string, skipped: Array<{ path: string; reason: string }>) => Object.fromEntries(skipped.map((s) => [rel(root, s.path), s.reason]));

describe('walking hostile folders', () => {
  it('walks a symbolic link loop to the parent once: 40 images stay 40, the loop is skipped with its reason', async () => {
    const root = await makeDataset(tmpDir(), { classes: { ants: 20, bees: 20 } });
    await fs.symlink('..', path.join(root, 'bees', 'loop'));
    await fs.symlink('.', path.join(root, 'ants', 'here'));
    const ds = await loadImageFolder(root);
    expect(ds.images).toHaveLength(40);
    expect(new Set(ds.images.map((i) => i.path)).size).toBe(40);
    expect(reasons(root, ds.skipped)).toEqual({
      'ants/here': `symbolic link loop (-> .): it points back to ${await fs.realpath(path.join(root, 'ants'))}, a folder that contains it`,
      'bees/loop': `symbolic link loop (-> ..): it points back to ${await fs.realpath(root)}, a folder that contains it`,
    });
    expect(ds.loops!.map((l) => rel(root, l.path))).toEqual(['ants/here', 'bees/loop']);
  });

  it('uses a place reached by two paths once, by its real path; follows links to new places once', async () => {
    const root = await makeDataset(tmpDir(), { classes: { a: 2, b: 2 } });
    const outside = await makeDataset(tmpDir(), { classes: { extra: 3 } });
    // a/zz_link -> ../b (b is walked by its real path anyway), a/00_link_to_b_file -> ../b/img_000.jpg,
    // b/more -> a folder outside the dataset (followed once), b/more_again -> the same outside folder
    await fs.symlink('../b', path.join(root, 'a', 'zz_link'));
    await fs.symlink('../b/img_000.jpg', path.join(root, 'a', '00_link_to_b_file'));
    await fs.symlink(path.join(outside, 'extra'), path.join(root, 'b', 'more'));
    await fs.symlink(path.join(outside, 'extra'), path.join(root, 'b', 'more_again'));
    // a hard link to a file already used
    await fs.link(path.join(root, 'a', 'img_000.jpg'), path.join(root, 'b', 'hard.jpg'));
    const ds = await loadImageFolder(root);
    const names = ds.images.map((i) => `${ds.classes[i.label]}:${rel(root, i.path)}`);
    expect(names).toEqual(['a:a/img_000.jpg', 'a:a/img_001.jpg', 'b:b/img_000.jpg', 'b:b/img_001.jpg', 'b:b/more/img_000.jpg', 'b:b/more/img_001.jpg', 'b:b/more/img_002.jpg']);
    const r = reasons(root, ds.skipped);
    expect(r['a/zz_link']).toBe(`a symbolic link (-> ../b) to ${path.join(root, 'b')}, which is already used`);
    expect(r['a/00_link_to_b_file']).toBe(`a symbolic link (-> ../b/img_000.jpg) to ${path.join(root, 'b', 'img_000.jpg')}, which is already used`);
    expect(r['b/more_again']).toBe(`a symbolic link (-> ${path.join(outside, 'extra')}) to ${path.join(root, 'b', 'more')}, which is already used`);
    expect(r['b/hard.jpg']).toBe(`a hard link to ${path.join(root, 'a', 'img_000.jpg')}, which is already used`);
    expect(ds.loops).toEqual([]);
  });

  it('skips dangling links and pipes with their reason, and never hangs on a pipe', async () => {
    const root = await makeDataset(tmpDir(), { classes: { a: 2, b: 2 } });
    await fs.symlink('gone.jpg', path.join(root, 'a', 'dangling.jpg'));
    await fs.symlink('/nonexistent/tlearn/folder', path.join(root, 'dangling_class'));
    execFileSync('mkfifo', [path.join(root, 'b', 'pipe.png')]);
    const ds = await loadImageFolder(root);
    expect(ds.images).toHaveLength(4);
    expect(reasons(root, ds.skipped)).toEqual({
      'a/dangling.jpg': 'dangling symbolic link (-> gone.jpg, which does not exist)',
      dangling_class: 'dangling symbolic link (-> /nonexistent/tlearn/folder, which does not exist)',
      'b/pipe.png': 'a named pipe, not an image file',
    });
  });

  it('follows a class folder that is a link, and links in a pre-split dataset, once', async () => {
    const root = tmpDir();
    const cats = await makeDataset(tmpDir(), { classes: { cat: 3 } });
    await makeDataset(path.join(root, 'train'), { classes: { dog: 3 } });
    await fs.symlink(path.join(cats, 'cat'), path.join(root, 'train', 'cat'));
    await makeDataset(path.join(root, 'val'), { classes: { dog: 1, cat: 1 } });
    // val/extra -> ../train: a second path to the training images
    await fs.symlink('../train/dog', path.join(root, 'val', 'zz_dog_again'));
    const ds = await loadImageFolder(root);
    expect(ds.classes).toEqual(['cat', 'dog']);
    expect(ds.predefined!.train).toHaveLength(6);
    expect(ds.predefined!.val).toHaveLength(2);
    expect(reasons(root, ds.skipped)).toEqual({ 'val/zz_dog_again': `a symbolic link (-> ../train/dog) to ${path.join(root, 'train', 'dog')}, which is already used` });
  });

  it('decides by content: a JPEG named .dat is an image, text named .jpg is not', async () => {
    const dir = tmpDir();
    await fs.writeFile(path.join(dir, 'photo.dat'), await sharp({ create: { width: 8, height: 8, channels: 3, background: '#123' } }).jpeg().toBuffer());
    await fs.writeFile(path.join(dir, 'photo.avif'), await sharp({ create: { width: 8, height: 8, channels: 3, background: '#123' } }).avif().toBuffer());
    await fs.writeFile(path.join(dir, 'notes.jpg'), 'just text\n');
    await fs.writeFile(path.join(dir, 'doc.png'), '%PDF-1.4\n%...');
    const r = await findImages(dir);
    expect(r.images.map((p) => path.basename(p))).toEqual(['photo.avif', 'photo.dat']);
    expect(reasons(dir, r.skipped)).toEqual({ 'notes.jpg': 'not an image: the content is text (named .jpg)', 'doc.png': 'not an image: the content is a PDF document (named .png)' });
  });

  it('sniffs formats by their first bytes and names common non-images', async () => {
    const head = async (img: Sharp) => new Uint8Array(await img.toBuffer());
    const base = () => sharp({ create: { width: 4, height: 4, channels: 3, background: '#fff' } });
    expect(sniffImageFormat(await head(base().avif()))).toBe('avif');
    expect(sniffImageFormat(await head(base().webp()))).toBe('webp');
    expect(sniffImageFormat(await head(base().tiff()))).toBe('tiff');
    expect(sniffImageFormat(Buffer.from('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBe('svg');
    expect(sniffImageFormat(Buffer.from('BMW is a car brand, not a bitmap'))).toBeUndefined();
    expect(describeContent(Buffer.from('<!doctype html><html>'))).toBe('an HTML page');
    expect(describeContent(Buffer.from('8BPS\0\x01'))).toBe('a Photoshop (PSD) file');
    expect(describeContent(Buffer.from([0, 0, 0, 0x18, ...Buffer.from('ftypmp42')]))).toBe('a media file (mp42; a video?)');
  });
});
