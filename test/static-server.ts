/** A minimal static file server on 127.0.0.1 (any free port) for browser tests: URL prefixes mapped to folders. */
import { createReadStream, promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.jpg': 'image/jpeg',
  '.png': 'image/png',
};

export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

/** Serves `roots` ({ '/web/': dir, ... }); paths that leave a root answer 404. */
export async function serveStatic(roots: Record<string, string>): Promise<StaticServer> {
  const server = http.createServer(async (req, res) => {
    const url = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    const prefix = Object.keys(roots).find((p) => url.startsWith(p));
    const root = prefix ? path.resolve(roots[prefix]!) : undefined;
    const file = root ? path.resolve(root, `.${url.slice(prefix!.length - 1)}`) : undefined;
    const target = file && (await fs.stat(file).catch(() => undefined))?.isDirectory() ? path.join(file, 'index.html') : file;
    if (!root || !target || !target.startsWith(root + path.sep) || !(await fs.stat(target).catch(() => undefined))?.isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(target).toLowerCase()] ?? 'application/octet-stream' });
    createReadStream(target).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}
