/**
 * HTTP(S) downloads that can be trusted: streamed to `<dest>.partial`, resumed with an HTTP Range request after
 * a broken connection (within the same call, and by a later call), hashed as they arrive, verified against an
 * expected hash, and only then renamed to `dest`. A file whose hash is wrong is deleted. One process at a time
 * downloads a given file (a lock file next to it).
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pidAlive } from './fs.js';
import { tlearnHome } from './home.js';
import type { Logger, Progress } from './log.js';

export interface ExpectedHash {
  algorithm: 'sha256' | 'md5';
  value: string;
}

export class DownloadError extends Error {
  constructor(
    message: string,
    readonly url: string,
    /** True when the host could not be reached at all (no network, DNS failure, connection refused). */
    readonly offline = false,
  ) {
    super(message);
  }
}

export class HashMismatchError extends Error {}

export interface DownloadOptions {
  expected?: ExpectedHash;
  /** Called as bytes arrive: bytes so far (including any resumed part) and the total (0 when unknown). */
  onProgress?: (done: number, total: number) => void;
  /** Called once the response starts, with the offset it resumes from (0 for a fresh download). */
  onStart?: (resumedFrom: number, total: number) => void;
  /** Called before an automatic resume after a broken connection. */
  onRetry?: (attempt: number, reason: string, resumeAt: number) => void;
  /** Automatic resumes after a broken connection within this call (default 3). */
  retries?: number;
  /** Abort when no byte arrives for this long (default 60 s). */
  idleTimeoutMs?: number;
}

export interface DownloadResult {
  sha256: string;
  md5: string;
  bytes: number;
  /** Bytes that were already on disk from an earlier, interrupted download. */
  resumedFrom: number;
}

const NETWORK_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

interface PartialMeta {
  url: string;
  etag?: string;
  lastModified?: string;
  total?: number;
}

/** Something went wrong after the response started: the part on disk is kept and can be resumed. */
class InterruptedError extends Error {
  constructor(
    message: string,
    /** The host could not be reached at all when resuming. */
    readonly offline = false,
  ) {
    super(message);
  }
}

async function readMeta(file: string): Promise<PartialMeta | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
}

async function sizeOf(file: string): Promise<number> {
  return (await fs.stat(file).catch(() => undefined))?.size ?? 0;
}

/** Takes `<dest>.lock`, or fails clearly when another live process holds it; a stale lock is taken over. */
async function lock(file: string, url: string): Promise<() => Promise<void>> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fs.writeFile(file, String(process.pid), { flag: 'wx' });
      return () => fs.rm(file, { force: true });
    } catch (e: any) {
      if (e.code !== 'EEXIST') throw e;
      const pid = Number(await fs.readFile(file, 'utf8').catch(() => ''));
      if (pid && pid !== process.pid && pidAlive(pid)) {
        throw new DownloadError(`another tlearn process (pid ${pid}) is downloading ${url} into ${path.dirname(file)}; wait for it to finish`, url);
      }
      await fs.rm(file, { force: true });
    }
  }
  throw new DownloadError(`could not lock ${file}`, url);
}

async function hashExisting(file: string, hashes: Hash[]): Promise<void> {
  for await (const chunk of createReadStream(file)) for (const h of hashes) h.update(chunk as Buffer);
}

function networkCode(e: any): string | undefined {
  return e?.cause?.code ?? e?.code;
}

/** One HTTP request: appends to the partial file from where it ends. Returns the total size when done. */
async function fetchOnce(url: string, partial: string, metaFile: string, hashes: Hash[], o: DownloadOptions, state: { have: number }): Promise<number> {
  const meta = await readMeta(metaFile);
  const headers: Record<string, string> = {};
  if (state.have > 0) {
    headers.range = `bytes=${state.have}-`;
    const validator = meta?.etag && !meta.etag.startsWith('W/') ? meta.etag : meta?.lastModified;
    if (validator) headers['if-range'] = validator;
  }
  const ctl = new AbortController();
  const idleMs = o.idleTimeoutMs ?? 60_000;
  let timer = setTimeout(() => ctl.abort(new Error(`no data for ${idleMs / 1000} s`)), idleMs);
  const bump = () => {
    clearTimeout(timer);
    timer = setTimeout(() => ctl.abort(new Error(`no data for ${idleMs / 1000} s`)), idleMs);
  };
  try {
    let res: Response;
    try {
      res = await fetch(url, { headers, signal: ctl.signal, redirect: 'follow' });
    } catch (e: any) {
      const code = networkCode(e);
      if (state.have > 0) throw new InterruptedError(`cannot reach ${url} (${code ?? e.cause?.message ?? e.message})`, NETWORK_CODES.has(code ?? '') || !code);
      throw new DownloadError(`cannot reach ${url} (${code ?? e.cause?.message ?? e.message})`, url, NETWORK_CODES.has(code ?? '') || !code);
    }
    if (res.status === 416 && state.have > 0 && meta?.total === state.have) return state.have; // it was complete
    if (res.status === 416) {
      // The part on disk does not fit the file the server has now: start again.
      await res.body?.cancel();
      await fs.rm(partial, { force: true });
      throw new InterruptedError('the server refused to resume (HTTP 416); starting again');
    }
    if (!res.ok || !res.body) {
      const err = new DownloadError(`download of ${url} failed: HTTP ${res.status} ${res.statusText}`, url);
      if (res.status >= 500) throw new InterruptedError(err.message);
      throw err;
    }
    let total = Number(res.headers.get('content-length') ?? 0);
    let append = false;
    if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (!m || Number(m[1]) !== state.have) {
        await res.body.cancel();
        throw new DownloadError(`download of ${url}: the server answered a resume with an unexpected range (${res.headers.get('content-range')})`, url);
      }
      total = m[3] === '*' ? 0 : Number(m[3]!);
      append = true;
    } else if (state.have > 0) {
      // A plain 200: the server ignored the range (or the file changed, If-Range): start from zero.
      state.have = 0;
      hashes.splice(0, hashes.length, createHash('sha256'), createHash('md5'));
    }
    const newMeta: PartialMeta = { url, etag: res.headers.get('etag') ?? undefined, lastModified: res.headers.get('last-modified') ?? undefined, total: total || undefined };
    await fs.writeFile(metaFile, JSON.stringify(newMeta));
    o.onStart?.(state.have, total);
    // Every byte received is written before an interruption is reported, so that a resume loses nothing.
    const out = createWriteStream(partial, { flags: append ? 'a' : 'w' });
    let broken: any;
    try {
      for await (const chunk of Readable.fromWeb(res.body as any) as AsyncIterable<Buffer>) {
        bump();
        for (const h of hashes) h.update(chunk);
        state.have += chunk.length;
        if (!out.write(chunk)) await once(out, 'drain');
        o.onProgress?.(state.have, total);
      }
    } catch (e) {
      broken = e;
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    if (broken) {
      const why = ctl.signal.aborted ? String(ctl.signal.reason?.message ?? 'timeout') : (networkCode(broken) ?? broken.cause?.message ?? broken.message);
      throw new InterruptedError(`the connection broke after ${state.have} bytes (${why})`);
    }
    if (total && state.have !== total) throw new InterruptedError(`the connection closed after ${state.have} of ${total} bytes`);
    return state.have;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Downloads `url` to `dest`. With `expected`, a file whose hash differs is deleted and a HashMismatchError
 * thrown. A broken connection is resumed (HTTP Range) up to `retries` times; after that the part downloaded so
 * far stays in `<dest>.partial` and the next call resumes it.
 */
export async function downloadFile(url: string, dest: string, o: DownloadOptions = {}): Promise<DownloadResult> {
  const partial = `${dest}.partial`;
  const metaFile = `${partial}.json`;
  const unlock = await lock(`${dest}.lock`, url);
  try {
    const meta = await readMeta(metaFile);
    if (!meta || meta.url !== url) await fs.rm(partial, { force: true });
    const state = { have: 0 };
    const hashes: Hash[] = [];
    // The hashes always cover exactly the bytes on disk: after an interruption they are recomputed from the file.
    const rehash = async () => {
      state.have = await sizeOf(partial);
      hashes.splice(0, hashes.length, createHash('sha256'), createHash('md5'));
      if (state.have > 0) await hashExisting(partial, hashes);
    };
    await rehash();
    const resumedFrom = state.have;
    const retries = o.retries ?? 3;
    for (let attempt = 0; ; attempt++) {
      try {
        await fetchOnce(url, partial, metaFile, hashes, o, state);
        break;
      } catch (e) {
        if (!(e instanceof InterruptedError)) throw e;
        if (attempt >= retries) {
          state.have = await sizeOf(partial);
          throw new DownloadError(`download of ${url} interrupted: ${e.message}; ${state.have ? `the ${state.have} bytes received are kept in ${partial} and the next attempt resumes from there` : 'nothing was kept'}`, url, e.offline);
        }
        await rehash();
        o.onRetry?.(attempt + 1, e.message, state.have);
        await new Promise((r) => setTimeout(r, Math.min(4000, 250 * 2 ** attempt)));
      }
    }
    const digest = { sha256: hashes[0]!.digest('hex'), md5: hashes[1]!.digest('hex') };
    if (o.expected) {
      const got = digest[o.expected.algorithm];
      if (got !== o.expected.value.toLowerCase()) {
        await fs.rm(partial, { force: true });
        await fs.rm(metaFile, { force: true });
        throw new HashMismatchError(`${url}: ${o.expected.algorithm} is ${got}, the publisher's is ${o.expected.value}; the file was not kept`);
      }
    }
    await fs.rename(partial, dest);
    await fs.rm(metaFile, { force: true });
    return { ...digest, bytes: state.have, resumedFrom };
  } finally {
    await unlock();
  }
}

/**
 * Applies $TLEARN_MIRROR, a base URL for mirrors and tests: `https://storage.googleapis.com/<path>` becomes
 * `<mirror>/<path>` (as for weights since the start), and any other `https://<host>/<path>` becomes
 * `<mirror>/<host>/<path>` (the layout `wget -x` writes).
 */
export function mirrored(url: string): string {
  const mirror = process.env.TLEARN_MIRROR?.trim().replace(/\/$/, '');
  if (!mirror) return url;
  const gcs = 'https://storage.googleapis.com';
  if (url.startsWith(`${gcs}/`)) return mirror + url.slice(gcs.length);
  const u = new URL(url);
  return `${mirror}/${u.host}${u.pathname}${u.search}`;
}

/** Where downloads are kept while they are incomplete (resumable) and before they are moved into place. */
export function downloadsDir(): string {
  return path.join(tlearnHome(), 'downloads');
}

/** downloadFile with a progress bar (size, rate, ETA) and resume messages on the logger. */
export async function downloadWithProgress(url: string, dest: string, label: string, log: Logger, expected?: ExpectedHash): Promise<DownloadResult> {
  let bar: Progress | undefined;
  let last = 0;
  const result = await downloadFile(url, dest, {
    expected,
    onStart: (from, total) => {
      // After a retry within this call the warning has said it all; a part left by an earlier call is news.
      if (from && !bar) log.info(`${label}: resuming an interrupted download at ${(from / 1e6).toFixed(1)} MB`);
      bar = log.progress(label, total, 'B', from);
      last = from;
    },
    onProgress: (done) => {
      bar?.tick(done - last);
      last = done;
    },
    onRetry: (attempt, reason, at) => log.warn(`${label}: ${reason}; resuming at ${(at / 1e6).toFixed(1)} MB (attempt ${attempt + 1})`),
  });
  bar?.done();
  return result;
}
