/**
 * Test infrastructure for the distributed extraction: Debian's redis-server started on a free loopback port
 * in a temp dir (no persistence) and stopped by the test, `tlearn worker` processes spawned from the built
 * CLI, and a loopback HTTP server for image URLs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { ROOT, tmpDir } from './helpers.js';

let warned = false;
/** True when redis-server is installed; otherwise says once, clearly, which tests skip. */
export function hasRedis(what: string): boolean {
  const ok = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!ok && !warned) {
    warned = true;
    console.warn(`SKIPPED: ${what} needs redis-server (Debian package redis-server; .ci/run installs it), which is not installed`);
  }
  return ok;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** redis-server on 127.0.0.1 and a free port, without persistence; retried if the port was taken meanwhile. */
export async function startRedis(): Promise<RedisServer> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const dir = tmpDir('tlearn-redis-');
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      proc.stdout!.on('data', (d) => {
        out += d;
        if (out.includes('Ready to accept connections')) (clearTimeout(timer), resolve(true));
      });
      proc.once('exit', () => (clearTimeout(timer), resolve(false)));
    });
    if (!ready) {
      proc.kill('SIGKILL');
      continue;
    }
    return {
      url: `redis://127.0.0.1:${port}`,
      port,
      stop: async () => {
        if (proc.exitCode === null) {
          const exited = new Promise((r) => proc.once('exit', r));
          proc.kill('SIGTERM');
          await exited;
        }
        await fs.rm(dir, { recursive: true, force: true });
      },
    };
  }
  throw new Error('could not start redis-server on a free port');
}

export interface WorkerProc {
  proc: ChildProcess;
  name: string;
  /** stderr so far. */
  log(): string;
  /** Resolves with the first stderr match of `re` (rejects after `ms`). */
  waitFor(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  /** Exit code (null if killed by a signal) and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A `tlearn worker` process from the built CLI, with quick stalled-job recovery for tests. */
export function spawnWorker(redisUrl: string, name: string, args: string[] = [], env: Record<string, string> = {}): WorkerProc {
  const proc = spawn(
    process.execPath,
    [path.join(ROOT, 'bin/tlearn.js'), 'worker', '--queue', redisUrl, '--name', name, '--threads', '1', '--lock-duration', '2000', '--stalled-interval', '1000', '--poll', '300', ...args],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  const waiters: Array<() => void> = [];
  proc.stderr!.on('data', (d) => {
    err += d;
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  const waitFor = (re: RegExp, ms = 60_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker ${name}: no ${re} within ${ms} ms; its log:\n${err}`)), ms);
      const check = () => {
        const m = err.match(re);
        if (m) (clearTimeout(timer), resolve(m));
        else if (proc.exitCode !== null) (clearTimeout(timer), reject(new Error(`worker ${name} exited; its log:\n${err}`)));
        else waiters.push(check);
      };
      check();
    });
  return {
    proc,
    name,
    log: () => err,
    waitFor,
    exited,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

export interface ImageServer {
  url: string;
  /** Requests seen, by path. */
  hits: Map<string, number>;
  close(): Promise<void>;
}

/** Serves files of `dir` on loopback, each response held back `delayMs`; unknown paths are 404. */
export async function serveFiles(dir: string, delayMs = 0): Promise<ImageServer> {
  const hits = new Map<string, number>();
  const server = http.createServer(async (req, res) => {
    const p = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    hits.set(p, (hits.get(p) ?? 0) + 1);
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    try {
      const body = await fs.readFile(path.join(dir, path.normalize(p).replace(/^(\.\.[/\\])+/, '')));
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length }).end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    hits,
    close: () => new Promise((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

/** A loopback port with nothing listening (bound, then closed). */
export const closedPort = freePort;
