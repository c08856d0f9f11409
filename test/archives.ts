/**
 * Test fixtures for downloads and extraction: tar.gz and zip archives built in memory (with any entry names,
 * links and device entries, to test that they are refused), and a loopback HTTP server with Range support that
 * can cut a response halfway.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import * as tarStream from 'tar-stream';

export interface ArchiveEntry {
  name: string;
  body?: Buffer;
  /** tar entry type (file by default); for zip, 'symlink' sets the Unix symlink mode. */
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device';
  linkname?: string;
}

export async function tarGz(entries: ArchiveEntry[], gzip = true): Promise<Buffer> {
  const pack = tarStream.pack();
  const collected = (async () => {
    const chunks: Buffer[] = [];
    for await (const c of pack) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = { name: e.name, type, linkname: e.linkname, size: type === 'file' ? (e.body?.length ?? 0) : 0, mode: type === 'directory' ? 0o755 : 0o644 };
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      pack.entry(header, type === 'file' ? (e.body ?? Buffer.alloc(0)) : Buffer.alloc(0), cb);
    });
  }
  pack.finalize();
  const tar = await collected;
  return gzip ? zlib.gzipSync(tar) : tar;
}

/** A zip (deflated entries) written by hand, so that it can hold names and modes a real tool would refuse. */
export function zip(entries: ArchiveEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const raw = e.type === 'symlink' ? Buffer.from(e.linkname ?? '') : (e.body ?? Buffer.alloc(0));
    const data = zlib.deflateRawSync(raw);
    const crc = zlib.crc32(raw);
    const mode = e.type === 'symlink' ? 0o120777 : e.type === 'directory' ? 0o040755 : 0o100644;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(8, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(raw.length, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, data);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by Unix
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(8, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(raw.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE((mode << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += local.length + name.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** Archive entries for every file under `dir`, named `<prefix>/<relative path>`. */
export async function entriesOf(dir: string, prefix: string): Promise<ArchiveEntry[]> {
  const out: ArchiveEntry[] = [];
  const walk = async (d: string) => {
    for (const e of (await fs.readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) await walk(full);
      else out.push({ name: `${prefix}/${path.relative(dir, full).split(path.sep).join('/')}`, body: await fs.readFile(full) });
    }
  };
  await walk(dir);
  return out;
}

export interface TestServer {
  base: string;
  files: Record<string, Buffer>;
  /** Every request: path and its Range header. */
  requests: Array<{ url: string; range?: string }>;
  /** Paths whose next N responses are cut after half of the body. */
  cut: Map<string, number>;
  /** When true, Range headers are ignored (a plain 200 every time). */
  ignoreRange: boolean;
  close(): Promise<void>;
}

/** Serves `files` on 127.0.0.1 (a free port), with HTTP Range support. */
export async function serveFiles(files: Record<string, Buffer>): Promise<TestServer> {
  const state = { files, requests: [] as TestServer['requests'], cut: new Map<string, number>(), ignoreRange: false };
  const server = http.createServer((req, res) => {
    const url = req.url!;
    state.requests.push({ url, range: req.headers.range });
    const body = state.files[url.split('?')[0]!];
    if (!body) {
      res.writeHead(404).end('not found');
      return;
    }
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const headers: Record<string, string | number> = { 'accept-ranges': 'bytes', etag: `"${body.length}-${body[0]}"` };
    if (m && !state.ignoreRange) {
      start = Number(m[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, { ...headers, 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
    } else {
      res.writeHead(200, { ...headers, 'content-length': body.length });
    }
    const part = body.subarray(start);
    const cuts = state.cut.get(url) ?? 0;
    if (cuts > 0) {
      state.cut.set(url, cuts - 1);
      res.write(part.subarray(0, Math.floor(part.length / 2)), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(part);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(state, {
    base,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  });
}

/** A loopback port on which nothing listens (connections are refused). */
export async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
