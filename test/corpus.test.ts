/**
 * The generated bad-input corpus (test/corpus.ts): each file's documented outcome — used with the right pixels,
 * or skipped with its path and reason — when a folder is walked and decoded, in `tlearn check` and in a training
 * run, with every other image still used; and a clear error for the whole run when nothing can be trained.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, ImageDecodeError } from '../src/image/decode.js';
import { loadImageFolder } from '../src/data/discover.js';
import { trainFromFolder } from '../src/train/run.js';
import { makeCorpus, openToOthers, pngDeclaring, type CorpusItem } from './corpus.js';
import { makeDataset, makeTinyBackbone, ROOT, runCli, tmpDir } from './helpers.js';

const isRoot = process.getuid?.() === 0;
let root: string;
let items: CorpusItem[];
let good: string[];

beforeAll(async () => {
  root = tmpDir('tlearn-corpus-');
  // as root, permissions do not stop reading: the "unreadable" file is readable in this process
  items = await makeCorpus(root, { unreadableIsReadable: isRoot });
  good = ['cats', 'dogs'].flatMap((c) => Array.from({ length: 10 }, (_, i) => path.join(root, c, `good_${String(i).padStart(2, '0')}.jpg`)));
});

const used = () => items.filter((i) => i.outcome === 'used');
const full = (i: CorpusItem) => path.join(root, i.rel);

function pixel(rgb: Uint8Array, x: number, y: number): number[] {
  const o = (y * 16 + x) * 3;
  return [rgb[o]!, rgb[o + 1]!, rgb[o + 2]!];
}

/** Runs the CLI as an ordinary user when the tests run as root, so that an unreadable file is unreadable. */
function cliAsUser(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const ids = isRoot ? { uid: 65534, gid: 65534 } : {};
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin/tlearn.js'), ...args], { env: { ...process.env, ...env }, maxBuffer: 64 << 20, ...ids }, (err, stdout, stderr) => resolve({ code: err ? ((err as any).code ?? 1) : 0, stdout, stderr }));
  });
}

describe('the bad-input corpus', () => {
  it('walking and decoding: every file has its documented outcome, used images decode to the right pixels', async () => {
    const ds = await loadImageFolder(root);
    expect(ds.classes).toEqual(['cats', 'dogs', 'nested', 'single']);
    expect(ds.warnings).toEqual(["class folder 'empty_class' has no images; class dropped"]);
    const found = new Set(ds.images.map((i) => i.path));
    for (const g of good) expect(found.has(g), g).toBe(true);
    const skipped = new Map(ds.skipped.map((s) => [s.path, s.reason]));
    for (const item of items) {
      if (item.outcome === 'skipped' && item.atWalk) {
        expect(found.has(full(item)), item.what).toBe(false);
        expect(skipped.get(full(item)), item.what).toMatch(item.reason!);
        continue;
      }
      // images by content: decoded now
      expect(found.has(full(item)), item.what).toBe(true);
      const rgb = await decodeImage(full(item), { width: 16, height: 16 }).catch((e) => e);
      if (item.outcome === 'skipped') {
        expect(rgb, item.what).toBeInstanceOf(ImageDecodeError);
        expect(rgb.reason, item.what).toMatch(item.reason!);
      } else {
        expect(rgb, `${item.what}: ${rgb}`).toBeInstanceOf(Uint8Array);
        for (const [x, y, want, tol] of item.pixels!) {
          const got = pixel(rgb, x, y);
          expect(got.every((v, c) => Math.abs(v - want[c]!) <= tol), `${item.what} at ${x},${y}: ${got} vs ${want}`).toBe(true);
        }
      }
    }
    // nothing else was found or skipped
    const expectedImages = good.length + items.filter((i) => !i.atWalk).length;
    expect(ds.images).toHaveLength(expectedImages);
    expect(ds.skipped).toHaveLength(items.filter((i) => i.atWalk).length);
  });

  it('a PNG with alpha: training, predict and serve see the same pixels, transparent ones white', async () => {
    const { prepareImage } = await import('../src/serve/images.js');
    const { preprocess } = await import('../src/backbones/preprocess.js');
    const { makeMetadata } = await import('../src/classifier/metadata.js');
    const file = path.join(root, 'cats', 'alpha.png');
    const meta = makeMetadata({ labels: ['a', 'b'], inputSize: [16, 16], preprocessing: 'unit', resize: 'squash', kernel: 'linear', backbone: { name: 'x', source: 'x', id: 'x', params: 0, note: '' } });
    const served = await prepareImage({ name: 'alpha.png', bytes: await fs.readFile(file) }, 0, 1, meta);
    const trained = preprocess(await decodeImage(file, { width: 16, height: 16 }), 'unit');
    expect(Array.from(served)).toEqual(Array.from(trained));
    // the right half was transparent (stored as blue): white
    expect(Array.from(served.subarray((8 * 16 + 12) * 3, (8 * 16 + 12) * 3 + 3))).toEqual([1, 1, 1]);
  });

  it('tlearn check lists each bad file with its reason and the symlink loop, counts the good images, and exits 0', async () => {
    await openToOthers(root);
    const home = tmpDir('tlearn-check-home-');
    await fs.chmod(home, 0o777);
    // run as an ordinary user: the unreadable file is unreadable
    const expectOf = (i: CorpusItem): CorpusItem => (i.rel === 'dogs/unreadable.jpg' ? { ...i, outcome: 'skipped', reason: /cannot read file \(EACCES\)/, atWalk: true } : i);
    const asUser = items.map(expectOf);
    const r = await cliAsUser(['check', root, '--json'], { TLEARN_HOME: home });
    expect(r.code, r.stderr).toBe(0);
    const c = JSON.parse(r.stdout);
    expect(c.trainable).toBe(true);
    const usedCount = asUser.filter((i) => i.outcome === 'used').length;
    expect(c.usable).toBe(good.length + usedCount);
    const skipped = new Map<string, string>(c.skipped.map((s: any) => [path.relative(root, s.path), s.reason]));
    for (const item of asUser.filter((i) => i.outcome === 'skipped')) expect(skipped.get(item.rel), item.what).toMatch(item.reason!);
    expect(c.skipped).toHaveLength(asUser.filter((i) => i.outcome === 'skipped').length);
    expect(c.loops.map((l: any) => path.relative(root, l.path))).toEqual(['dogs/loop', 'dogs/self.jpg']);
    expect(c.classes.map((k: any) => [k.name, k.usable])).toEqual([
      ['cats', 10 + asUser.filter((i) => i.rel.startsWith('cats/') && i.outcome === 'used').length],
      ['dogs', 10 + asUser.filter((i) => i.rel.startsWith('dogs/') && i.outcome === 'used').length],
      ['nested', 2],
      ['single', 1],
    ]);
    expect(c.blocking.join('\n')).toMatch(/dogs\/loop: symbolic link loop/);
    expect(c.warnings.join('\n')).toMatch(/class 'single' has only 1 usable image/);
    // the text report says the same
    const text = await cliAsUser(['check', root], { TLEARN_HOME: home });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`${usedCount + 20} usable images`));
    expect(text.stdout).toMatch(/dogs\/loop: symbolic link loop \(-> \.\.\)/);
    expect(text.stdout).toMatch(/cats\/bomb\.png: image too large to decode \(50000x50000 pixels/);
    expect(text.stdout).toMatch(/trainable \(train stops on the problems above unless given --force\)/);
  });

  it('tlearn check exits non-zero with one clear line when nothing can be trained', async () => {
    const home = tmpDir('tlearn-check-home-');
    // no usable image: every file is broken
    const broken = tmpDir();
    for (const c of ['a', 'b']) {
      await fs.mkdir(path.join(broken, c));
      await fs.writeFile(path.join(broken, c, 'bomb.png'), pngDeclaring(40000, 40000));
      await fs.writeFile(path.join(broken, c, 'text.jpg'), 'not a picture');
    }
    const none = await runCli(['check', broken], { TLEARN_HOME: home });
    expect(none.code).toBe(1);
    expect(none.stderr.trim().split('\n')).toEqual([`tlearn check: not trainable: no usable image under ${broken} (2 image files, none can be decoded)`]);
    // no image files at all
    const empty = tmpDir();
    await fs.mkdir(path.join(empty, 'a'));
    await fs.writeFile(path.join(empty, 'a', 'readme.txt'), 'hi');
    const nothing = await runCli(['check', empty], { TLEARN_HOME: home });
    expect(nothing.code).toBe(1);
    expect(nothing.stderr.trim().split('\n')).toEqual([`tlearn check: not trainable: no images found under ${empty}`]);
    // a folder with a single class
    const one = await makeDataset(tmpDir(), { classes: { only: 4 } });
    const single = await runCli(['check', one], { TLEARN_HOME: home });
    expect(single.code).toBe(1);
    expect(single.stderr.trim().split('\n')).toEqual([`tlearn check: not trainable: ${one} has only one class with images ('only'); a classifier needs at least two`]);
    const train = await runCli(['train', one, '--out', path.join(tmpDir(), 'r')], { TLEARN_HOME: home });
    expect(train.code).toBe(1);
    expect(train.stderr).toMatch(/tlearn: error: .* has only one class with images \('only'\); a classifier needs at least two/);
  });

  it('training stops on the symlink loop unless told to go on; with --force every usable image is used and every bad one reported', async () => {
    const backbone = await makeTinyBackbone(tmpDir());
    await expect(trainFromFolder({ data: root, backbone, epochs: 2, out: path.join(tmpDir(), 'r') })).rejects.toThrow(/dogs\/loop: symbolic link loop[\s\S]*pass --force to train anyway/);
    const r = await trainFromFolder({ data: root, backbone, epochs: 2, batchSize: 8, force: true, out: path.join(tmpDir(), 'r') });
    const split = JSON.parse(await fs.readFile(path.join(r.outDir, 'split.json'), 'utf8'));
    const inSplit = new Set<string>([...split.train, ...split.val, ...split.test].map((e: [string, number]) => e[0]));
    for (const g of good) expect(inSplit.has(path.relative(root, g))).toBe(true);
    for (const i of used()) expect(inSplit.has(i.rel), i.what).toBe(true);
    const reported = new Map<string, string>(r.metrics.dataset.skippedFiles.map((s: any) => [path.relative(root, s.path), s.reason]));
    for (const i of items.filter((x) => x.outcome === 'skipped')) expect(reported.get(i.rel), i.what).toMatch(i.reason!);
    // the images that decode are all in train, val or test predictions
    const predicted = r.metrics.dataset.split!;
    expect(predicted.train + predicted.val + predicted.test).toBe(good.length + used().length);
  });
});
