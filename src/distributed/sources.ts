/**
 * Where images come from when they are extracted far away: absolute paths on a filesystem every machine
 * mounts (optionally at another place: path maps), or http(s) URLs. Also the list file `tlearn extract`
 * reads: one path or URL per line.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ImageDecodeError } from '../image/decode.js';
import { DatasetError, findImages, loadImageFolder, type SkippedFile } from '../data/discover.js';

export const isUrl = (s: string): boolean => /^https?:\/\//i.test(s);

export class SourceListError extends Error {}

/**
 * Reads a list of images: one absolute or relative path (relative to the list file's folder) or http(s)
 * URL per line; blank lines and lines starting with # are ignored.
 */
export async function readSourceList(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e: any) {
    throw new SourceListError(`cannot read the list ${file} (${e.code ?? e.message})`);
  }
  const dir = path.dirname(path.resolve(file));
  const out: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(line) && !isUrl(line)) throw new SourceListError(`${file}:${i + 1}: only http(s) URLs and paths are supported, got '${line}'`);
    out.push(isUrl(line) ? line : path.resolve(dir, line));
  });
  return out;
}

/** `from=to` pairs: a path under `from` (as the coordinator sees it) is read under `to` on this machine. */
export interface PathMap {
  from: string;
  to: string;
}

export function parsePathMap(spec: string): PathMap {
  const eq = spec.indexOf('=');
  const from = eq > 0 ? spec.slice(0, eq) : '';
  const to = eq > 0 ? spec.slice(eq + 1) : '';
  if (!path.isAbsolute(from) || !path.isAbsolute(to)) throw new SourceListError(`a path map is /coordinator/path=/local/path (both absolute), got '${spec}'`);
  return { from: path.resolve(from), to: path.resolve(to) };
}

export function mapPath(p: string, maps: PathMap[]): string {
  for (const m of maps) {
    if (p === m.from) return m.to;
    if (p.startsWith(m.from + path.sep)) return m.to + p.slice(m.from.length);
  }
  return p;
}

export interface ReadSourceOptions {
  maps?: PathMap[];
  /** Per URL (default 30 s). */
  timeoutMs?: number;
  /** Refuse bigger downloads (default 200 MB). */
  maxBytes?: number;
}

function fetchFailure(e: any, timeoutMs: number): string {
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `timed out after ${timeoutMs / 1000} s`;
  const cause = e?.cause;
  if (cause?.code) return `${cause.code}${cause.message && !String(cause.message).includes(cause.code) ? `: ${cause.message}` : cause.message ? ` (${cause.message})` : ''}`;
  return String(e?.message ?? e);
}

/** The bytes of one image; failures are ImageDecodeErrors whose reason says what went wrong. */
export async function readSource(src: string, opts: ReadSourceOptions = {}): Promise<Buffer> {
  if (!isUrl(src)) {
    const file = mapPath(src, opts.maps ?? []);
    try {
      return await fs.readFile(file);
    } catch (e: any) {
      throw new ImageDecodeError(src, `cannot read file (${e.code ?? e.message})${file !== src ? ` at ${file}` : ''}`);
    }
  }
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const maxBytes = opts.maxBytes ?? 200e6;
  let res: Response;
  try {
    res = await fetch(src, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  } catch (e) {
    throw new ImageDecodeError(src, `cannot fetch (${fetchFailure(e, timeoutMs)})`);
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw new ImageDecodeError(src, `cannot fetch (HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''})`);
  }
  const declared = Number(res.headers.get('content-length'));
  if (declared > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw new ImageDecodeError(src, `cannot fetch (${declared} bytes, more than the ${maxBytes}-byte limit)`);
  }
  try {
    const buf = Buffer.from(await res.arrayBuffer());
    if (buf.length > maxBytes) throw new Error(`${buf.length} bytes, more than the ${maxBytes}-byte limit`);
    return buf;
  } catch (e) {
    throw new ImageDecodeError(src, `cannot fetch (${fetchFailure(e, timeoutMs)})`);
  }
}

export interface ExtractInputs {
  /** Absolute paths and URLs, in order. */
  sources: string[];
  skipped: SkippedFile[];
  warnings: string[];
  /** How `data` was read, in words. */
  kind: string;
}

/**
 * The images `tlearn extract <data>` works on: a dataset folder gives exactly the images `tlearn train`
 * would use (class folders, or train/val/test; `exclude` applies), a folder without class folders gives
 * every image under it, and a file is a list of paths and URLs (see readSourceList).
 */
export async function listExtractInputs(data: string, o: { exclude?: string[] } = {}): Promise<ExtractInputs> {
  const st = await fs.stat(data).catch(() => undefined);
  if (!st) throw new SourceListError(`${data} does not exist (expected a dataset folder or a list file of paths and URLs)`);
  if (st.isFile()) return { sources: await readSourceList(data), skipped: [], warnings: [], kind: 'list file' };
  try {
    const ds = await loadImageFolder(data, { exclude: o.exclude });
    return { sources: ds.images.map((i) => i.path), skipped: ds.skipped, warnings: ds.warnings, kind: `dataset of ${ds.classes.length} classes` };
  } catch (e) {
    if (!(e instanceof DatasetError)) throw e;
    if (o.exclude?.length) throw e;
    const found = await findImages(data);
    if (!found.images.length) throw e;
    return { sources: found.images.map((f) => path.resolve(f)), skipped: found.skipped, warnings: [], kind: 'folder of images' };
  }
}
