import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DownloadError, downloadFile, HashMismatchError, mirrored } from '../src/util/download.js';
import { closedPort, serveFiles, type TestServer } from './archives.js';
import { tmpDir } from './helpers.js';

const body = randomBytes(300_000);
const sha = createHash('sha256').update(body).digest('hex');
let srv: TestServer;

beforeAll(async () => {
  srv = await serveFiles({ '/data.bin': body });
});
afterAll(() => srv.close());
beforeEach(() => {
  srv.requests.length = 0;
  srv.cut.clear();
  srv.ignoreRange = false;
});

describe('downloadFile (against a loopback HTTP server)', () => {
  it('downloads, reports progress with the total, verifies the hash and leaves nothing else behind', async () => {
    const dir = tmpDir();
    const dest = path.join(dir, 'data.bin');
    const seen: Array<[number, number]> = [];
    const r = await downloadFile(`${srv.base}/data.bin`, dest, { expected: { algorithm: 'sha256', value: sha }, onProgress: (d, t) => seen.push([d, t]) });
    expect(r.sha256).toBe(sha);
    expect(r.bytes).toBe(body.length);
    expect(r.resumedFrom).toBe(0);
    expect(seen.at(-1)).toEqual([body.length, body.length]);
    expect(Buffer.compare(await fs.readFile(dest), body)).toBe(0);
    expect(await fs.readdir(dir)).toEqual(['data.bin']);
  });

  it('a wrong hash is refused and nothing is kept', async () => {
    const dir = tmpDir();
    const err = await downloadFile(`${srv.base}/data.bin`, path.join(dir, 'data.bin'), { expected: { algorithm: 'sha256', value: 'ab'.repeat(32) } }).catch((e) => e);
    expect(err).toBeInstanceOf(HashMismatchError);
    expect(err.message).toMatch(new RegExp(`sha256 is ${sha}, the publisher's is ${'ab'.repeat(32)}; the file was not kept`));
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('a connection cut halfway keeps the part; the next call resumes it with a Range request to a verified file', async () => {
    const dir = tmpDir();
    const dest = path.join(dir, 'data.bin');
    srv.cut.set('/data.bin', 1);
    const err = await downloadFile(`${srv.base}/data.bin`, dest, { expected: { algorithm: 'sha256', value: sha }, retries: 0 }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/interrupted: .* bytes received are kept in .*data\.bin\.partial and the next attempt resumes from there/);
    const half = (await fs.stat(`${dest}.partial`)).size; // the server cut after sending half
    expect(half).toBeGreaterThan(0);
    expect(half).toBeLessThanOrEqual(body.length / 2);
    await expect(fs.access(dest)).rejects.toThrow();

    const r = await downloadFile(`${srv.base}/data.bin`, dest, { expected: { algorithm: 'sha256', value: sha } });
    expect(r.resumedFrom).toBe(half);
    expect(r.sha256).toBe(sha);
    expect(srv.requests.map((q) => q.range)).toEqual([undefined, `bytes=${half}-`]);
    expect(Buffer.compare(await fs.readFile(dest), body)).toBe(0);
    expect(await fs.readdir(dir)).toEqual(['data.bin']);
  });

  it('within one call, a broken connection is resumed automatically', async () => {
    const dest = path.join(tmpDir(), 'data.bin');
    srv.cut.set('/data.bin', 2);
    const retries: number[] = [];
    const r = await downloadFile(`${srv.base}/data.bin`, dest, { expected: { algorithm: 'sha256', value: sha }, onRetry: (_a, _w, at) => retries.push(at) });
    expect(r.sha256).toBe(sha);
    expect(retries).toHaveLength(2);
    expect(retries[0]).toBeGreaterThan(0);
    expect(retries[1]).toBeGreaterThan(retries[0]!); // each resume starts where the bytes on disk end
    expect(srv.requests.map((q) => q.range)).toEqual([undefined, `bytes=${retries[0]}-`, `bytes=${retries[1]}-`]);
  });

  it('a server that ignores the Range header: the download starts again and is still verified', async () => {
    const dest = path.join(tmpDir(), 'data.bin');
    srv.cut.set('/data.bin', 1);
    await downloadFile(`${srv.base}/data.bin`, dest, { retries: 0 }).catch(() => {});
    srv.ignoreRange = true;
    const r = await downloadFile(`${srv.base}/data.bin`, dest, { expected: { algorithm: 'sha256', value: sha } });
    expect(r.sha256).toBe(sha);
    expect((await fs.stat(dest)).size).toBe(body.length);
  });

  it('a part left by a download of another URL is not resumed', async () => {
    const dest = path.join(tmpDir(), 'data.bin');
    await fs.writeFile(`${dest}.partial`, 'stale bytes');
    await fs.writeFile(`${dest}.partial.json`, JSON.stringify({ url: 'http://elsewhere/x' }));
    const r = await downloadFile(`${srv.base}/data.bin`, dest, { expected: { algorithm: 'sha256', value: sha } });
    expect(r.resumedFrom).toBe(0);
    expect(srv.requests[0]!.range).toBeUndefined();
  });

  it('another live process downloading the same file is reported, not raced', async () => {
    const dest = path.join(tmpDir(), 'data.bin');
    await fs.writeFile(`${dest}.lock`, String(process.ppid));
    await expect(downloadFile(`${srv.base}/data.bin`, dest)).rejects.toThrow(new RegExp(`another tlearn process \\(pid ${process.ppid}\\) is downloading`));
    await fs.writeFile(`${dest}.lock`, '999999999'); // a dead process: its lock is taken over
    expect((await downloadFile(`${srv.base}/data.bin`, dest)).sha256).toBe(sha);
  });

  it('unreachable hosts are reported as offline; HTTP errors with their status', async () => {
    const closed = await closedPort();
    const err = await downloadFile(`http://127.0.0.1:${closed}/x`, path.join(tmpDir(), 'x')).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.offline).toBe(true);
    expect(err.message).toMatch(new RegExp(`cannot reach http://127\\.0\\.0\\.1:${closed}/x \\(ECONNREFUSED\\)`));
    const missing = await downloadFile(`${srv.base}/missing`, path.join(tmpDir(), 'x')).catch((e) => e);
    expect(missing.offline).toBe(false);
    expect(missing.message).toMatch(/HTTP 404/);
  });

  it('TLEARN_MIRROR: storage.googleapis.com is replaced, other hosts go under <mirror>/<host>/', () => {
    process.env.TLEARN_MIRROR = 'http://127.0.0.1:8000/m/';
    try {
      expect(mirrored('https://storage.googleapis.com/tensorflow/keras-applications/x.h5')).toBe('http://127.0.0.1:8000/m/tensorflow/keras-applications/x.h5');
      expect(mirrored('https://data.caltech.edu/records/r/files/caltech-101.zip?download=1')).toBe('http://127.0.0.1:8000/m/data.caltech.edu/records/r/files/caltech-101.zip?download=1');
    } finally {
      delete process.env.TLEARN_MIRROR;
    }
    expect(mirrored('https://download.pytorch.org/tutorial/hymenoptera_data.zip')).toBe('https://download.pytorch.org/tutorial/hymenoptera_data.zip');
  });
});
