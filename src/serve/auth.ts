/**
 * API keys: `Authorization: Bearer <key>`, compared in constant time (both sides hashed to the same length
 * first, so neither the key's content nor its length leaks through timing). Health checks and the page's
 * static files stay open; the API, the report and /metrics need the key when one is set.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { HttpError } from './errors.js';

const OPEN = new Set(['/', '/index.html', '/healthz', '/readyz']);

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

export function keyMatches(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  return timingSafeEqual(digest(expected), digest(given));
}

export function isOpenPath(url: string): boolean {
  const p = url.split('?')[0]!;
  return OPEN.has(p) || p.startsWith('/assets/');
}

/** Requires the key on every route but the open ones. */
export function installAuth(app: FastifyInstance, apiKey: string): void {
  const expected = apiKey;
  app.addHook('onRequest', async (req) => {
    if (req.method === 'OPTIONS' || isOpenPath(req.url)) return;
    const h = req.headers.authorization;
    const m = typeof h === 'string' ? /^Bearer\s+(.+)$/i.exec(h.trim()) : null;
    if (!keyMatches(expected, m?.[1])) {
      throw new HttpError(401, 'unauthorized', h ? 'the API key is wrong' : 'this server needs an API key: send "Authorization: Bearer <key>"', { 'www-authenticate': 'Bearer' });
    }
  });
}

/** Loopback hosts need no key; anything else does unless insecureNoAuth is set. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h);
}
