/**
 * Thumbnails: made once per image content (sha256 of the file's bytes), small WebP files under
 * TLEARN_HOME/studio/thumbs/, shared by every project. The path → content hash mapping is remembered by the
 * file's size and modification time, so a cached thumbnail is answered without reading the image again.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { HttpError } from '../serve/errors.js';
import { writeFileAtomic } from '../util/fs.js';

export const THUMB_SIZE = 160;

export class ThumbCache {
  private readonly hashes = new Map<string, string>();
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly dir: string, private readonly maxParallel = 4) {}

  private async slot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.maxParallel) await new Promise<void>((r) => this.waiting.push(r));
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  /**
   * The thumbnail (WebP bytes) of an image file and the image's content hash; made and stored on the first
   * request. When `ifNoneMatch` names the current hash, no bytes are read (body undefined: answer 304).
   */
  async get(file: string, ifNoneMatch = ''): Promise<{ hash: string; body?: Buffer }> {
    const st = await fs.stat(file).catch(() => undefined);
    if (!st?.isFile()) throw new HttpError(404, 'no such image', 'the image is not there any more');
    const key = `${file}\0${st.size}\0${st.mtimeMs}`;
    let hash = this.hashes.get(key);
    let bytes: Buffer | undefined;
    if (!hash) {
      bytes = await fs.readFile(file);
      hash = createHash('sha256').update(bytes).digest('hex');
      this.hashes.set(key, hash);
    }
    if (ifNoneMatch === `"${hash}"`) return { hash };
    const cached = path.join(this.dir, hash.slice(0, 2), `${hash}.webp`);
    const hit = await fs.readFile(cached).catch(() => undefined);
    if (hit) return { hash, body: hit };
    const src = bytes ?? (await fs.readFile(file));
    const thumb = await this.slot(() =>
      sharp(src, { limitInputPixels: 100_000_000, failOn: 'none' })
        .rotate()
        .resize(THUMB_SIZE, THUMB_SIZE, { fit: 'cover' })
        .webp({ quality: 70 })
        .toBuffer()
        .catch(() => {
          throw new HttpError(422, 'unreadable image', 'this file cannot be read as an image');
        }),
    );
    await writeFileAtomic(cached, thumb);
    return { hash, body: thumb };
  }
}
