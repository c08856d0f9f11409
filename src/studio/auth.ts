/**
 * Access to the studio, as Jupyter does it for a local app that writes files: a random token printed with the URL
 * (`?token=`), or `Authorization: Bearer <token>`, exchanged on first use for an HttpOnly, SameSite=Strict cookie.
 * Every route answers 401 without it (the page explains where the link is). Against other sites in the same
 * browser: the Host header must name the address the studio is bound to (no DNS rebinding), and a request that
 * changes something must come from the studio's own origin (Origin header, and Sec-Fetch-Site when sent).
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { keyMatches } from '../serve/auth.js';
import { HttpError } from '../serve/errors.js';

export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

export function cookieName(port: number): string {
  return `tlearn-studio-${port}`;
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return undefined;
}

/**
 * The Host header values that name this server: the bound address (and `localhost` for a loopback bind; every
 * address of this machine for a wildcard bind such as 0.0.0.0). Never a domain name other than localhost: a page
 * on attacker.example whose name is made to point at this machine (DNS rebinding) sends Host: attacker.example.
 */
export function allowedHosts(boundHost: string, port: number): Set<string> {
  const h = boundHost.toLowerCase().replace(/^\[|\]$/g, '');
  const out = new Set<string>();
  const add = (name: string) => out.add(`${name.includes(':') ? `[${name}]` : name}:${port}`);
  add(h);
  if (h === '0.0.0.0' || h === '::') {
    for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) add(a.address.toLowerCase().replace(/%.*$/, ''));
    add('localhost');
  }
  if (h === '127.0.0.1' || h === 'localhost' || h === '::1') {
    add('127.0.0.1');
    add('localhost');
    add('::1');
  }
  return out;
}

const NO_TOKEN_PAGE = (cmd: string) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>tlearn studio: link needed</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em">
<h1>Open the studio with its link</h1>
<p>The studio only opens for the link it printed when it started. Go back to the window where you ran
<code>${cmd}</code> and open the address that ends with <code>?token=…</code> (copy all of it).</p>
<p>If you closed that window, start the studio again: it prints a new link.</p></body></html>`;

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Installs the Host, token and Origin checks on every route of `app`. */
export function installStudioAuth(app: FastifyInstance, token: string, boundHost: string): void {
  let hosts: Set<string> | undefined;
  let cookie = '';
  const init = () => {
    if (hosts) return;
    const port = (app.server.address() as AddressInfo | null)?.port ?? 0;
    if (!port) throw new HttpError(503, 'not ready', 'the studio is still starting');
    hosts = allowedHosts(boundHost, port);
    cookie = cookieName(port);
  };
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    init();
    const host = (req.headers.host ?? '').toLowerCase();
    if (!hosts!.has(host)) throw new HttpError(403, 'wrong host', `this studio answers as ${[...hosts!][0]} only (the Host header was '${host.slice(0, 100)}')`);
    const url = new URL(req.url, `http://${host}`);
    const fromQuery = url.searchParams.get('token') ?? undefined;
    const h = req.headers.authorization;
    const fromHeader = typeof h === 'string' ? /^Bearer\s+(.+)$/i.exec(h.trim())?.[1] : undefined;
    const fromCookie = readCookie(req.headers.cookie, cookie);
    const viaQuery = keyMatches(token, fromQuery);
    const viaHeader = keyMatches(token, fromHeader);
    const viaCookie = keyMatches(token, fromCookie);
    if (!viaQuery && !viaHeader && !viaCookie) {
      const wantsPage = req.method === 'GET' && /text\/html/.test(String(req.headers.accept ?? ''));
      if (wantsPage) {
        void reply.code(401).headers({ 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' }).send(NO_TOKEN_PAGE('tlearn studio'));
        return reply;
      }
      throw new HttpError(401, 'unauthorized', fromQuery || fromHeader || fromCookie ? 'the studio token is wrong: open the link tlearn studio printed' : 'open the studio with the link it printed (it ends with ?token=...)', { 'www-authenticate': 'Bearer' });
    }
    if (STATE_CHANGING.has(req.method)) {
      const origin = req.headers.origin;
      const site = req.headers['sec-fetch-site'];
      if (site && site !== 'same-origin' && site !== 'none') throw new HttpError(403, 'cross-site request', `a page from another site (${site}) tried to change this project; refused`);
      if (origin !== undefined) {
        if (origin !== `http://${host}`) throw new HttpError(403, 'cross-site request', `a page from ${String(origin).slice(0, 100)} tried to change this project; refused`);
      } else if (!viaHeader) {
        throw new HttpError(403, 'origin needed', 'a request that changes the project must come from the studio page (Origin header) or carry "Authorization: Bearer <token>"');
      }
    }
    if (viaQuery) {
      void reply.header('set-cookie', `${cookie}=${token}; HttpOnly; SameSite=Strict; Path=/`);
      if (req.method === 'GET' && (url.pathname === '/' || url.pathname === '/index.html')) {
        // the token leaves the address bar (and the history) once the cookie holds it
        url.searchParams.delete('token');
        const rest = url.searchParams.toString();
        void reply.code(303).header('location', `/${rest ? `?${rest}` : ''}`).header('cache-control', 'no-store').send();
        return reply;
      }
    }
  });
}
