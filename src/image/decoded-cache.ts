/**
 * Decoded images kept for the rest of a training run, so that later epochs never decode a JPEG again: the
 * first request for a key decodes (the caller's `produce`) and appends the raw RGB bytes to one scratch file;
 * later requests read them back with one positional read straight into the array that is returned.
 *
 * The file lives under $TLEARN_HOME/tmp and is unlinked as soon as it is open (POSIX), so nothing is left
 * behind however the process ends. The cache stops growing at `maxBytes` (default: half the free space of
 * that disk, at most 32 GB; TLEARN_DECODED_CACHE_MB overrides, 0 turns it off): images past the cap are
 * simply decoded again each time.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { tlearnHome } from '../util/home.js';
import { tempPath } from '../util/tempfiles.js';
import type { RgbImage } from './rgb.js';

/** Where one kept image lies in the scratch file. */
export interface DecodedCacheEntry {
  offset: number;
  width: number;
  height: number;
}

export interface DecodedCacheOptions {
  /** Folder for the scratch file (default $TLEARN_HOME/tmp). */
  dir?: string;
  /** Most bytes of pixels to keep (default: see above). */
  maxBytes?: number;
}

export interface DecodedCacheStats {
  images: number;
  bytes: number;
  /** Requests answered from the file. */
  hits: number;
  /** Requests that decoded. */
  misses: number;
  /** Decoded images not kept because the cache was full. */
  notKept: number;
}

const MAX_DEFAULT = 32 * 2 ** 30;

async function defaultMaxBytes(dir: string): Promise<number> {
  const env = process.env.TLEARN_DECODED_CACHE_MB;
  if (env !== undefined && env.trim() !== '') {
    const mb = Number(env);
    if (!(mb >= 0)) throw new Error(`TLEARN_DECODED_CACHE_MB must be a number of megabytes >= 0, got '${env}'`);
    return mb * 1e6;
  }
  try {
    const s = await fs.statfs(dir);
    return Math.min(MAX_DEFAULT, (s.bavail * s.bsize) / 2);
  } catch {
    return 4 * 2 ** 30;
  }
}

export class DecodedImageCache {
  private readonly entries = new Map<string, Promise<DecodedCacheEntry | undefined>>();
  private end = 0;
  private closed = false;
  readonly stats: DecodedCacheStats = { images: 0, bytes: 0, hits: 0, misses: 0, notKept: 0 };

  private constructor(
    private readonly handle: fs.FileHandle | undefined,
    private readonly file: string,
    readonly maxBytes: number,
  ) {}

  static async create(o: DecodedCacheOptions = {}): Promise<DecodedImageCache> {
    const dir = o.dir ?? path.join(tlearnHome(), 'tmp');
    await fs.mkdir(dir, { recursive: true });
    const maxBytes = o.maxBytes ?? (await defaultMaxBytes(dir));
    if (maxBytes <= 0) return new DecodedImageCache(undefined, '', 0);
    // a temporary name (util/tempfiles): where unlinking an open file fails (Windows), a sweep removes a dead run's
    const file = tempPath(path.join(dir, 'decoded-images.rgb'));
    const handle = await fs.open(file, 'w+');
    // gone from the folder now; the space is freed when the handle closes, even if the process is killed
    const unlinked = await fs.rm(file).then(
      () => true,
      () => false,
    );
    return new DecodedImageCache(handle, unlinked ? '' : file, maxBytes);
  }

  /** The image for `key`: read back from the file, or made by `produce` (and kept while there is room). */
  async get(key: string, produce: () => Promise<RgbImage>): Promise<RgbImage> {
    const known = this.entries.get(key);
    if (known) {
      const e = await known;
      if (e && this.handle && !this.closed) {
        this.stats.hits++;
        const data = new Uint8Array(e.width * e.height * 3);
        const { bytesRead } = await this.handle.read(data, 0, data.length, e.offset);
        if (bytesRead === data.length) return { data, width: e.width, height: e.height };
      }
    }
    this.stats.misses++;
    const made = produce();
    // registered before the decode finishes, so a second request for the key waits for this one
    if (!known) this.entries.set(key, made.then((img) => this.keep(img)).catch(() => undefined));
    return made;
  }

  private async keep(img: RgbImage): Promise<DecodedCacheEntry | undefined> {
    const n = img.width * img.height * 3;
    if (!this.handle || this.closed || this.end + n > this.maxBytes) {
      this.stats.notKept++;
      return undefined;
    }
    const offset = this.end;
    this.end += n;
    await this.handle.write(img.data, 0, n, offset);
    this.stats.images++;
    this.stats.bytes += n;
    return { offset, width: img.width, height: img.height };
  }

  /**
   * The scratch file's descriptor while it is open (undefined when the cache keeps nothing). A worker thread of
   * this process may read kept images with it (fs.readSync at an entry's offset) until close() is called.
   */
  get fd(): number | undefined {
    return this.handle && !this.closed ? this.handle.fd : undefined;
  }

  /**
   * For a reader elsewhere (a worker thread): where `key`'s pixels are, once any write of them has finished;
   * `known` is false when nothing was ever made for the key. Counts a hit when there is an entry to read.
   */
  async locate(key: string): Promise<{ known: boolean; entry?: DecodedCacheEntry }> {
    const known = this.entries.get(key);
    if (!known) return { known: false };
    const entry = await known;
    if (entry && this.fd !== undefined) {
      this.stats.hits++;
      return { known: true, entry };
    }
    return { known: true };
  }

  /**
   * A decode made elsewhere for a key that locate() did not find: `reserve` registers the key at once (a second
   * request waits for it, as with get), and the returned function keeps the pixels when they come (undefined: the
   * decode failed, nothing is kept). Counts a miss, as get does.
   */
  reserve(key: string): (img: RgbImage | undefined) => void {
    this.stats.misses++;
    let give!: (img: RgbImage | undefined) => void;
    const made = new Promise<RgbImage | undefined>((resolve) => (give = resolve));
    this.entries.set(key, made.then((img) => (img ? this.keep(img) : undefined)).catch(() => undefined));
    return give;
  }

  /** Counts a request that decodes again without keeping (its key was seen and not kept), as get does. */
  countMiss(): void {
    this.stats.misses++;
  }

  /** Closes (and so frees) the scratch file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled(this.entries.values());
    await this.handle?.close();
    if (this.file) await fs.rm(this.file, { force: true });
  }
}
