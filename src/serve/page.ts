/**
 * The try-it page at / and its assets (from the package's web/ folder, read once at start and served from
 * memory: a request names one of a fixed set of files and never reaches the file system), and each run's
 * report.html, read-only, under a strict content security policy (no network).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { HttpError } from './errors.js';
import type { ServedModel } from './models.js';

/** The folder holding index.html, page.js, page.css, classifier.js and preprocess.js. */
export const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

export const PAGE_FILES: Record<string, string> = {
  'page.js': 'text/javascript; charset=utf-8',
  'page.css': 'text/css; charset=utf-8',
  'classifier.js': 'text/javascript; charset=utf-8',
  'preprocess.js': 'text/javascript; charset=utf-8',
};

/** index.html for a mode: 'server' (talks to the API) or 'local' (runs the model in the browser). */
export async function pageHtml(mode: 'server' | 'local', title = 'tlearn'): Promise<string> {
  const html = await fs.readFile(path.join(WEB_DIR, 'index.html'), 'utf8');
  const esc = title.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return html.replace('__TLEARN_MODE__', mode).replace(/__TLEARN_TITLE__/g, esc);
}

const PAGE_CSP = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'";
const REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

export async function pageRoutes(app: FastifyInstance, models: Map<string, ServedModel>): Promise<void> {
  const index = await pageHtml('server');
  const assets = new Map<string, Buffer>();
  for (const f of Object.keys(PAGE_FILES)) assets.set(f, await fs.readFile(path.join(WEB_DIR, f)));
  const common = { 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-cache' };

  const sendIndex = async (_req: unknown, reply: any) => reply.headers({ ...common, 'content-security-policy': PAGE_CSP }).type('text/html; charset=utf-8').send(index);
  app.get('/', sendIndex);
  app.get('/index.html', sendIndex);
  app.get('/assets/:file', async (req, reply) => {
    const { file } = req.params as { file: string };
    const body = Object.hasOwn(PAGE_FILES, file) ? assets.get(file) : undefined;
    if (!body) throw new HttpError(404, 'not found', `no asset '${file.slice(0, 100)}'`);
    return reply.headers(common).type(PAGE_FILES[file]!).send(body);
  });
  app.get('/v1/models/:name/report.html', async (req, reply) => {
    const { name } = req.params as { name: string };
    const file = models.get(name)?.reportFile;
    if (!file) throw new HttpError(404, 'no report', `model '${name.slice(0, 100)}' has no report.html (only run folders have one)`);
    const html = await fs.readFile(file).catch(() => undefined);
    if (!html) throw new HttpError(404, 'no report', `the report of '${name}' is no longer on disk`);
    return reply.headers({ ...common, 'content-security-policy': REPORT_CSP }).type('text/html; charset=utf-8').send(html);
  });
}
