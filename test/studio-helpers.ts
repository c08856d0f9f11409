/** Helpers for the studio tests: a project of generated images, raw HTTP with any Host header, folder snapshots. */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import yauzl from 'yauzl';

/** Writes `n` small distinct JPEGs per class. */
export async function makeProject(dir: string, classes: Record<string, number>, size = 40, seed = 0): Promise<string> {
  let k = seed * 100_003;
  for (const [c, n] of Object.entries(classes)) {
    await fs.mkdir(path.join(dir, c), { recursive: true });
    for (let i = 0; i < n; i++, k++) {
      const raw = Buffer.alloc(size * size * 3);
      for (let p = 0; p < raw.length; p++) raw[p] = (p * 7 + k * 31 + (p % 3) * k * 13) & 255;
      await sharp(raw, { raw: { width: size, height: size, channels: 3 } }).jpeg({ quality: 85 }).toFile(path.join(dir, c, `img_${String(i).padStart(4, '0')}.jpg`));
    }
  }
  return dir;
}

/** Every file under `dir` (links not followed) → sha256 of its content (or the link target). */
export async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const rel = path.relative(dir, p);
      if (e.isSymbolicLink()) out.set(rel, `link:${await fs.readlink(p)}`);
      else if (e.isDirectory()) {
        out.set(`${rel}/`, 'dir');
        await walk(p);
      } else out.set(rel, createHash('sha256').update(await fs.readFile(p)).digest('hex'));
    }
  };
  await walk(dir);
  return out;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP request with exactly the headers given (fetch cannot set Host). */
export function rawRequest(url: string, o: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<RawResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method: o.method ?? 'GET', headers: o.headers, setHost: !o.headers?.host }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}

/** JSON POST as the studio page sends it (cookie-less: Bearer token and the studio's own Origin). */
export async function post(base: string, token: string, route: string, json: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(`${base}${route}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', origin: base }, body: JSON.stringify(json) });
  return { status: r.status, body: await r.json().catch(() => null) };
}

export async function get(base: string, token: string, route: string): Promise<{ status: number; body: any }> {
  const r = await fetch(`${base}${route}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: r.status, body: await r.json().catch(() => null) };
}

export function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Files (not dot-files) in a folder; 0 when it does not exist. */
export const countFiles = async (dir: string) => (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).length;

/** Waits until `dir` holds at least `n` files (or `ms` pass); the count it saw last. */
export async function waitForFiles(dir: string, n: number, ms = 30_000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const c = await countFiles(dir);
    if (c >= n || Date.now() - t0 > ms) return c;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The Data page's "Add a class", typed and confirmed with Enter; waits for the class card. */
export async function addClassOnPage(page: Page, name: string): Promise<void> {
  await page.click('#add-class');
  await page.fill('#ask-input', name);
  await page.keyboard.press('Enter');
  await page.locator('.class-card', { has: page.locator('h2', { hasText: name }) }).waitFor();
}

/** How many webcam frames the Data page says it recorded. */
export const recordedOnPage = async (page: Page) => Number(((await page.textContent('#webcam-count')) ?? '').match(/^(\d+)/)?.[1] ?? 0);

/** The entry names of a zip file, in order. */
export function zipEntryNames(file: string): Promise<string[]> {
  return new Promise((resolve, reject) =>
    yauzl.open(file, { lazyEntries: true }, (err, zip) => {
      if (err) return reject(err);
      const names: string[] = [];
      zip.on('entry', (e) => {
        names.push(e.fileName);
        zip.readEntry();
      });
      zip.on('end', () => resolve(names));
      zip.readEntry();
    }),
  );
}
