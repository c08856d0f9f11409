/** HTTP(S) downloads into the cache: streamed to a temporary file, hashed, verified, then moved into place. */
import { createHash } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { tempPath } from '../util/tempfiles.js';
import type { PublishedHash } from './zoo.js';

export class DownloadError extends Error {
  constructor(
    message: string,
    readonly url: string,
    readonly offline = false,
  ) {
    super(message);
  }
}

export class HashMismatchError extends Error {}

export interface DownloadResult {
  sha256: string;
  bytes: number;
}

const NETWORK_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/** Downloads `url` to `dest`. With `expected`, a file whose hash differs is deleted and an error thrown. */
export async function downloadFile(url: string, dest: string, expected?: PublishedHash, onBytes?: (n: number, total: number) => void): Promise<DownloadResult> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(10 * 60_000) });
  } catch (e: any) {
    const code = e.cause?.code ?? e.code;
    throw new DownloadError(`cannot reach ${url} (${code ?? e.cause?.message ?? e.message})`, url, NETWORK_CODES.has(code) || !code);
  }
  if (!res.ok || !res.body) throw new DownloadError(`download of ${url} failed: HTTP ${res.status} ${res.statusText}`, url);
  await fs.mkdir(path.dirname(dest), { recursive: true });
  const tmp = tempPath(dest);
  const sha = createHash('sha256');
  const md5 = expected?.algorithm === 'md5' ? createHash('md5') : undefined;
  const total = Number(res.headers.get('content-length') ?? 0);
  let bytes = 0;
  try {
    const body = Readable.fromWeb(res.body as any);
    body.on('data', (chunk: Buffer) => {
      sha.update(chunk);
      md5?.update(chunk);
      bytes += chunk.length;
      onBytes?.(bytes, total);
    });
    await pipeline(body, createWriteStream(tmp));
    const digest = { sha256: sha.digest('hex'), md5: md5?.digest('hex') };
    if (expected) {
      const got = expected.algorithm === 'md5' ? digest.md5 : digest.sha256;
      if (got !== expected.value.toLowerCase()) {
        throw new HashMismatchError(`${url}: ${expected.algorithm} is ${got}, the publisher's is ${expected.value}; the file was not kept`);
      }
    }
    await fs.rename(tmp, dest);
    return { sha256: digest.sha256, bytes };
  } catch (e) {
    await fs.rm(tmp, { force: true });
    if (e instanceof HashMismatchError) throw e;
    throw e instanceof DownloadError ? e : new DownloadError(`download of ${url} failed: ${(e as Error).message}`, url);
  }
}
