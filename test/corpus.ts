/**
 * The bad-input corpus, generated (nothing binary is committed): every kind of hostile or odd file a real image
 * folder holds, each with its documented outcome — used (with the pixels it must decode to), or skipped with a
 * reason — next to 20 good images in two classes.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { Rng } from '../src/util/rng.js';
import { drawImage } from './helpers.js';

export type Outcome = 'used' | 'skipped';

export interface CorpusItem {
  /** Path relative to the corpus root. */
  rel: string;
  what: string;
  outcome: Outcome;
  /** For skipped items: the reason. */
  reason?: RegExp;
  /** For used items: pixels of the 16x16 decode that must hold, as [x, y, [r, g, b], tolerance]. */
  pixels?: Array<[number, number, [number, number, number], number]>;
  /** Skipped while walking (listed by check without decoding) rather than when decoded. */
  atWalk?: boolean;
}

const RED: [number, number, number] = [220, 30, 30];
const BLUE: [number, number, number] = [30, 30, 220];

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(body) >>> 0);
  return Buffer.concat([len, body, crc]);
}

/** A PNG whose header declares width x height (a decompression bomb's header) and whose data is tiny. */
export function pngDeclaring(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr), pngChunk('IDAT', zlib.deflateSync(Buffer.alloc(64))), pngChunk('IEND', Buffer.alloc(0))]);
}

const solid = (c: [number, number, number], w = 24, h = 24) => sharp({ create: { width: w, height: h, channels: 3, background: { r: c[0], g: c[1], b: c[2] } } });

/** Writes 20 good images (cats/, dogs/) and the corpus into `root`; returns the corpus items. */
export async function makeCorpus(root: string, o: { unreadableIsReadable: boolean }): Promise<CorpusItem[]> {
  const rng = new Rng(11);
  for (const [cls, color, shape] of [['cats', 'red', 'circle'], ['dogs', 'blue', 'square']] as const) {
    await fs.mkdir(path.join(root, cls), { recursive: true });
    for (let i = 0; i < 10; i++) await (await drawImage(color, rng, 48, shape)).jpeg({ quality: 90 }).toFile(path.join(root, cls, `good_${String(i).padStart(2, '0')}.jpg`));
  }
  const items: CorpusItem[] = [];
  const put = async (rel: string, data: Buffer | string, item: Omit<CorpusItem, 'rel'>) => {
    await fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await fs.writeFile(path.join(root, rel), data);
    items.push({ rel, ...item });
  };
  const goodJpeg = await solid(RED, 64, 64).jpeg().toBuffer();

  // files that are not (readable) images
  await put('cats/zero.jpg', Buffer.alloc(0), { what: 'zero-byte file', outcome: 'skipped', reason: /^empty file$/, atWalk: true });
  await put('cats/truncated.jpg', goodJpeg.subarray(0, goodJpeg.length >> 1), { what: 'truncated JPEG', outcome: 'skipped', reason: /truncated JPEG: the file ends before its end-of-image marker/ });
  await put('cats/notes.jpg', 'These are my notes about cats.\nNot a picture.\n', { what: 'text named .jpg', outcome: 'skipped', reason: /not an image: the content is text \(named \.jpg\)/, atWalk: true });
  await put('cats/page.png', '<!DOCTYPE html>\n<html><body><img src="cat.png"></body></html>\n', { what: 'HTML named .png', outcome: 'skipped', reason: /not an image: the content is an HTML page \(named \.png\)/, atWalk: true });
  await put('cats/bomb.png', pngDeclaring(50000, 50000), { what: 'PNG header declaring 50000x50000', outcome: 'skipped', reason: /image too large to decode \(50000x50000 pixels, more than the limit of 268 megapixels\)/ });
  await put('cats/fake.heic', Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypheic\0\0\0\0mif1heic'), Buffer.alloc(200)]), { what: 'HEIC (HEVC) file', outcome: 'skipped', reason: /not a readable image/ });

  // odd but good images: used, with the right pixels
  await put('cats/huge.jpg', await solid(RED, 12000, 12000).jpeg({ quality: 60 }).toBuffer(), { what: '12000x12000 JPEG', outcome: 'used', pixels: [[8, 8, RED, 20]] });
  await put('cats/cmyk.jpg', await solid(RED).toColourspace('cmyk').jpeg().toBuffer(), { what: 'CMYK JPEG', outcome: 'used', pixels: [[8, 8, RED, 40]] });
  await put('cats/deep16.png', await solid(RED).toColourspace('rgb16').png().toBuffer(), { what: '16-bit PNG', outcome: 'used', pixels: [[8, 8, RED, 4]] });
  // left half opaque red, right half fully transparent (stored as blue): transparent pixels become white
  const alpha = Buffer.alloc(24 * 24 * 4);
  for (let y = 0; y < 24; y++) for (let x = 0; x < 24; x++) alpha.set(x < 12 ? [...RED, 255] : [...BLUE, 0], (y * 24 + x) * 4);
  await put('cats/alpha.png', await sharp(alpha, { raw: { width: 24, height: 24, channels: 4 } }).png().toBuffer(), {
    what: 'PNG with alpha (transparent pixels become white)',
    outcome: 'used',
    pixels: [
      [3, 8, RED, 4],
      [12, 8, [255, 255, 255], 4],
    ],
  });
  await put('cats/palette.png', await solid(RED).png({ palette: true, colours: 4 }).toBuffer(), { what: 'palette PNG', outcome: 'used', pixels: [[8, 8, RED, 8]] });
  const frame = async (c: [number, number, number]) => solid(c, 16, 16).raw().toBuffer();
  const anim = await sharp(Buffer.concat([await frame(RED), await frame(BLUE)]), { raw: { width: 16, height: 32, channels: 3, pageHeight: 16 } }).gif().toBuffer();
  await put('cats/animated.gif', anim, { what: 'animated GIF (first frame used)', outcome: 'used', pixels: [[8, 8, RED, 30]] });
  await put('dogs/grey.jpg', await solid([128, 128, 128]).grayscale().jpeg().toBuffer(), { what: 'greyscale JPEG', outcome: 'used', pixels: [[8, 8, [128, 128, 128], 6]] });
  // 20 wide x 10 high, left half red, right half blue, EXIF orientation 6 (rotate 90° clockwise to display):
  // upright it is 10 wide x 20 high with red on top
  const left = await solid(RED, 10, 10).png().toBuffer();
  const exif = await solid(BLUE, 20, 10).composite([{ input: left, left: 0, top: 0 }]).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
  await put('dogs/rotated.jpg', exif, {
    what: 'EXIF orientation 6',
    outcome: 'used',
    pixels: [
      [8, 2, RED, 40],
      [8, 13, BLUE, 40],
    ],
  });
  await put('dogs/photo.avif', await solid(BLUE).avif().toBuffer(), { what: 'AVIF', outcome: 'used', pixels: [[8, 8, BLUE, 30]] });
  await put('dogs/real-jpeg.dat', await solid([40, 40, 200]).jpeg().toBuffer(), { what: 'a JPEG named .dat (content decides)', outcome: 'used', pixels: [[8, 8, [40, 40, 200], 20]] });

  // names
  await put(`dogs/my dog $(touch pwned); rm -rf ~ & 'x' "y" |z.jpg`, await solid([50, 50, 210]).jpeg().toBuffer(), { what: 'shell metacharacters in the name', outcome: 'used', pixels: [[8, 8, [50, 50, 210], 20]] });
  await put('dogs/ünïcødé 猫 🐶.jpg', await solid([60, 60, 190]).jpeg().toBuffer(), { what: 'unicode name', outcome: 'used', pixels: [[8, 8, [60, 60, 190], 20]] });

  // hidden files
  await put('cats/.DS_Store', Buffer.from('Bud1\0\0\0\0'), { what: '.DS_Store', outcome: 'skipped', reason: /^hidden file$/, atWalk: true });
  await put('dogs/.hidden.jpg', await solid(BLUE).jpeg().toBuffer(), { what: 'hidden image', outcome: 'skipped', reason: /^hidden file$/, atWalk: true });

  // unreadable (as root, permissions do not stop reading: then it is used)
  await put('dogs/unreadable.jpg', await solid([70, 70, 180]).jpeg().toBuffer(), o.unreadableIsReadable ? { what: 'unreadable file (readable by root)', outcome: 'used', pixels: [[8, 8, [70, 70, 180], 20]] } : { what: 'unreadable file', outcome: 'skipped', reason: /cannot read file \(EACCES\)/, atWalk: true });
  await fs.chmod(path.join(root, 'dogs/unreadable.jpg'), 0o000);

  // links and special files
  await fs.symlink('..', path.join(root, 'dogs/loop'));
  items.push({ rel: 'dogs/loop', what: 'symlink loop to the parent', outcome: 'skipped', reason: /symbolic link loop \(-> \.\.\): it points back to .*, a folder that contains it/, atWalk: true });
  await fs.symlink('self.jpg', path.join(root, 'dogs/self.jpg'));
  items.push({ rel: 'dogs/self.jpg', what: 'symlink to itself', outcome: 'skipped', reason: /symbolic link loop \(-> self\.jpg\): it never reaches a file/, atWalk: true });
  await fs.symlink('no-such-file.jpg', path.join(root, 'dogs/dangling.jpg'));
  items.push({ rel: 'dogs/dangling.jpg', what: 'dangling symlink', outcome: 'skipped', reason: /dangling symbolic link \(-> no-such-file\.jpg, which does not exist\)/, atWalk: true });
  await fs.symlink('good_00.jpg', path.join(root, 'cats/again.jpg'));
  items.push({ rel: 'cats/again.jpg', what: 'second path (symlink) to an image', outcome: 'skipped', reason: /a symbolic link \(-> good_00\.jpg\) to .*cats\/good_00\.jpg, which is already used/, atWalk: true });
  execFileSync('mkfifo', [path.join(root, 'dogs/pipe.jpg')]);
  items.push({ rel: 'dogs/pipe.jpg', what: 'named pipe (must not hang)', outcome: 'skipped', reason: /a named pipe, not an image file/, atWalk: true });

  // folders
  await fs.mkdir(path.join(root, 'empty_class'));
  await put('single/only.jpg', await solid([30, 200, 30]).jpeg().toBuffer(), { what: 'a class with one image', outcome: 'used', pixels: [[8, 8, [30, 200, 30], 20]] });
  await put('nested/level1/level2/deep.jpg', await solid([200, 200, 30]).jpeg().toBuffer(), { what: 'nested two levels deep', outcome: 'used', pixels: [[8, 8, [200, 200, 30], 20]] });
  await put('nested/top.jpg', await solid([200, 200, 30]).png().toBuffer(), { what: 'a PNG named .jpg', outcome: 'used', pixels: [[8, 8, [200, 200, 30], 4]] });
  return items;
}

/** Makes a tree readable (and the unreadable file unreadable) for another user (tests that run as root). */
export async function openToOthers(root: string): Promise<void> {
  const walk = async (dir: string) => {
    await fs.chmod(dir, 0o755);
    for (const e of await fs.readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) await walk(full);
      else if (e.isFile() && !e.name.startsWith('unreadable')) await fs.chmod(full, 0o644);
    }
  };
  await walk(root);
}
