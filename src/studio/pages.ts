/**
 * The studio's page: web/studio/index.html at / and its modules and styles under /studio/, read once at start
 * and served from memory (a request names one of a fixed set of files and never reaches the file system), under
 * a strict content security policy: scripts and styles from the studio only, no inline code, no other sites.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../serve/errors.js';
import { WEB_DIR } from '../serve/page.js';

export const STUDIO_WEB_DIR = path.join(WEB_DIR, 'studio');

const TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.html': 'text/html; charset=utf-8' };

export const STUDIO_CSP = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

export async function pageRoutes(app: FastifyInstance): Promise<void> {
  const assets = new Map<string, { body: Buffer; type: string }>();
  for (const f of await fs.readdir(STUDIO_WEB_DIR)) {
    const type = TYPES[path.extname(f)];
    if (type && f !== 'index.html') assets.set(f, { body: await fs.readFile(path.join(STUDIO_WEB_DIR, f)), type });
  }
  const index = await fs.readFile(path.join(STUDIO_WEB_DIR, 'index.html'));
  const common = { 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-cache', 'content-security-policy': STUDIO_CSP };
  const sendIndex = async (_req: unknown, reply: any) => reply.headers(common).type('text/html; charset=utf-8').send(index);
  app.get('/', sendIndex);
  app.get('/index.html', sendIndex);
  app.get('/studio/:file', async (req, reply) => {
    const { file } = req.params as { file: string };
    const a = assets.get(file);
    if (!a) throw new HttpError(404, 'not found', `no file '${file.slice(0, 100)}'`);
    return reply.headers(common).type(a.type).send(a.body);
  });
}
