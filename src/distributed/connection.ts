/**
 * The user's Redis: URL checks, a connection that fails fast with a clear message when Redis cannot be
 * reached, BullMQ's connection options, and the registry of running extractions (see names.ts).
 */
import type { RedisOptions as BullRedisOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { RUNS_SET, runKey, type RunAnnouncement } from './names.js';

export class QueueConnectionError extends Error {}

/** Checks a `redis://[user:password@]host[:port][/db]` or `rediss://` (TLS) URL. */
export function checkRedisUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new QueueConnectionError(`--queue must be a Redis URL like redis://host:6379, got '${url}'`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new QueueConnectionError(`--queue must be a redis:// or rediss:// URL, got '${url}'`);
  if (!u.hostname) throw new QueueConnectionError(`--queue has no host: '${url}'`);
  const db = u.pathname.replace(/^\//, '');
  if (db && !/^\d+$/.test(db)) throw new QueueConnectionError(`--queue: the path must be a database number, got '/${db}' in '${url}'`);
  return u;
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

/** Connection options for BullMQ's queues and workers (BullMQ makes its own ioredis clients from them). */
export function bullConnection(url: string): BullRedisOptions {
  checkRedisUrl(url);
  return { url, maxRetriesPerRequest: null };
}

/** A plain client, connected, or a QueueConnectionError saying why not. */
export async function connectRedis(url: string, opts: { timeoutMs?: number; name?: string } = {}): Promise<Redis> {
  checkRedisUrl(url);
  let lastError: Error | undefined;
  let connected = false;
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: opts.timeoutMs ?? 10_000,
    connectionName: opts.name,
    maxRetriesPerRequest: 5,
    // Before the first connection: give up at once (the caller reports it); after: reconnect with backoff.
    retryStrategy: (times) => (connected ? Math.min(times * 200, 5000) : null),
  });
  client.on('error', (e) => (lastError = e));
  try {
    await client.connect();
    await client.ping();
  } catch (e: any) {
    client.disconnect();
    const why = lastError?.message ?? e?.message ?? String(e);
    const hint = /protocol error/i.test(why) ? ' (is it a Redis server?)' : /NOAUTH|WRONGPASS/i.test(why) ? ' (wrong or missing password in the URL)' : '';
    throw new QueueConnectionError(`cannot connect to Redis at ${redactUrl(url)}: ${why}${hint}`);
  }
  connected = true;
  return client;
}

/** The runs coordinators announce, so that workers find the queues to serve. */
export class RunRegistry {
  constructor(readonly redis: Redis) {}

  /** Announces (or refreshes) a run; it disappears `ttlMs` after the last refresh. */
  async announce(a: RunAnnouncement, ttlMs: number): Promise<void> {
    await this.redis.multi().sadd(RUNS_SET, a.run).set(runKey(a.run), JSON.stringify(a), 'PX', ttlMs).exec();
  }

  async withdraw(run: string): Promise<void> {
    await this.redis.multi().del(runKey(run)).srem(RUNS_SET, run).exec();
  }

  async alive(run: string): Promise<boolean> {
    return (await this.redis.exists(runKey(run))) === 1;
  }

  /** The runs whose coordinators are alive; expired ones are dropped from the set. */
  async live(): Promise<RunAnnouncement[]> {
    const ids = await this.redis.smembers(RUNS_SET);
    if (!ids.length) return [];
    const values = await this.redis.mget(ids.map(runKey));
    const out: RunAnnouncement[] = [];
    const dead: string[] = [];
    ids.forEach((id, i) => {
      const v = values[i];
      if (v === null || v === undefined) dead.push(id);
      else {
        try {
          out.push(JSON.parse(v) as RunAnnouncement);
        } catch {
          dead.push(id);
        }
      }
    });
    if (dead.length) await this.redis.srem(RUNS_SET, ...dead);
    return out;
  }
}
