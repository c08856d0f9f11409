/**
 * `tlearn serve` as a library: createServer(models, options) loads the models and returns a fastify
 * instance with tlearn's routes (an app can add its own, or listen itself); startServer also listens and
 * shuts down cleanly on SIGINT/SIGTERM (stop accepting, finish in-flight requests, release the models).
 */
import Fastify, { type FastifyInstance } from 'fastify';
import cors from '@fastify/cors';
import multipart from '@fastify/multipart';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import { installAuth, isLoopback } from './auth.js';
import { DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_MS } from './batcher.js';
import { HttpError, installErrorHandlers } from './errors.js';
import { createMetrics, installRequestMetrics } from './metrics.js';
import type { LoadClassifierOptions } from '../classifier/load.js';
import { checkModelSpecs, loadServedModels, parseModelSpec, type LoadModelsOptions, type ModelSpec, type ServedModel } from './models.js';
import { pageRoutes } from './page.js';
import { apiRoutes, type ServeLimits, type ServeState } from './routes.js';

export interface ServeOptions {
  /** Where the server will listen (default 127.0.0.1): anything but loopback needs apiKey or insecureNoAuth. */
  host?: string;
  port?: number;
  /** Bearer token required on the API (everything but the page, /healthz and /readyz). */
  apiKey?: string;
  /** Allow a non-loopback host without an API key. */
  insecureNoAuth?: boolean;
  /** Origins allowed by CORS (default: none, CORS off). */
  cors?: string[];
  /** Request body limit in bytes (default 20 MB). */
  bodyLimit?: number;
  /** Largest image in pixels, read from its header before decoding (default 50 million). */
  maxPixels?: number;
  /** Most images per request (default 32). */
  maxImages?: number;
  /** Milliseconds to receive and answer a request (default 30000). */
  timeoutMs?: number;
  /** Dynamic batching: most images per forward pass, and how long an idle model waits for more. */
  maxBatch?: number;
  maxWaitMs?: number;
  /** onnxruntime threads per model (default: all cores). */
  threads?: number;
  /** How .tflite classifiers are loaded (labels file, --dequantize). */
  classifier?: LoadClassifierOptions;
  /** Serve int8 versions of the models (static quantization; see `tlearn serve --int8`). */
  int8?: LoadModelsOptions['int8'];
  logger?: Logger;
}

export const SERVE_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  bodyLimit: 20 * 1024 * 1024,
  maxPixels: 50_000_000,
  maxImages: 32,
  timeoutMs: 30_000,
  maxBatch: DEFAULT_MAX_BATCH,
  maxWaitMs: DEFAULT_MAX_WAIT_MS,
};

export class ServeConfigError extends Error {}

/** Refuses an unauthenticated non-loopback bind unless insecureNoAuth says so. */
export function checkExposure(host: string, o: Pick<ServeOptions, 'apiKey' | 'insecureNoAuth'>): void {
  if (isLoopback(host) || o.apiKey || o.insecureNoAuth) return;
  throw new ServeConfigError(`refusing to listen on ${host} without an API key: anyone who can reach it could use the models. Pass --api-key <key> (clients send "Authorization: Bearer <key>"), bind 127.0.0.1, or pass --insecure-no-auth if that is really what you want`);
}

export type ModelsInput = Array<string | ModelSpec> | ServedModel[];

function isServed(m: unknown): m is ServedModel {
  return typeof m === 'object' && m !== null && 'batcher' in m;
}

/**
 * Loads the models (paths, `name=path` strings or {name, path}) and returns a fastify instance with tlearn's
 * routes, not yet listening. Its onClose hook releases the models it loaded.
 */
export async function createServer(models: ModelsInput, o: ServeOptions = {}): Promise<FastifyInstance> {
  const host = o.host ?? SERVE_DEFAULTS.host;
  checkExposure(host, o);
  const log = o.logger ?? silentLogger;
  const limits: ServeLimits = { bodyLimit: o.bodyLimit ?? SERVE_DEFAULTS.bodyLimit, maxPixels: o.maxPixels ?? SERVE_DEFAULTS.maxPixels, maxImages: o.maxImages ?? SERVE_DEFAULTS.maxImages };
  const maxBatch = o.maxBatch ?? SERVE_DEFAULTS.maxBatch;
  const metrics = createMetrics(maxBatch);
  let served: ServedModel[];
  let owned = false;
  if (models.length && models.every(isServed)) served = models as ServedModel[];
  else {
    const specs = checkModelSpecs((models as Array<string | ModelSpec>).map((m) => (typeof m === 'string' ? parseModelSpec(m) : m)));
    served = await loadServedModels(specs, {
      threads: o.threads,
      classifier: o.classifier,
      int8: o.int8,
      logger: log,
      batching: { maxBatch, maxWaitMs: o.maxWaitMs ?? SERVE_DEFAULTS.maxWaitMs },
      onBatch: (name, n, sec) => metrics.observeBatch(name, n, sec),
    });
    owned = true;
  }
  const timeoutMs = o.timeoutMs ?? SERVE_DEFAULTS.timeoutMs;
  const app = Fastify({
    logger: false,
    bodyLimit: limits.bodyLimit,
    requestTimeout: timeoutMs,
    handlerTimeout: timeoutMs,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  const state: ServeState = { closing: false };
  const byName = new Map(served.map((m) => [m.name, m]));
  installErrorHandlers(app, limits.bodyLimit, log);
  installRequestMetrics(app, metrics);
  if (o.apiKey) installAuth(app, o.apiKey);
  else if (!o.insecureNoAuth) {
    // Whoever listens this instance somewhere else than the host it was created for still gets no open API.
    app.addHook('onRequest', async (req) => {
      const local = req.socket?.localAddress;
      if (local && !isLoopback(local)) throw new HttpError(403, 'forbidden', 'this server has no API key and answers on loopback only');
    });
  }
  if (o.cors?.length) await app.register(cors, { origin: o.cors, methods: ['GET', 'POST'], allowedHeaders: ['content-type', 'authorization'] });
  await app.register(multipart, { limits: { fileSize: limits.bodyLimit, files: limits.maxImages } });
  app.removeContentTypeParser('text/plain');
  for (const type of [/^image\/[\w.+-]+$/i, 'application/octet-stream']) {
    app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: limits.bodyLimit }, (_req, body, done) => done(null, body));
  }
  await app.register(async (scope) => {
    await apiRoutes(scope, { models: byName, limits, metrics, state });
    await pageRoutes(scope, byName);
  });
  app.addHook('preClose', async () => {
    state.closing = true;
  });
  if (owned) app.addHook('onClose', async () => void (await Promise.all(served.map((m) => m.runner.close()))));
  return app;
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  /** Resolves when the server has shut down after a signal (or close()). */
  closed: Promise<void>;
}

/** createServer + listen; on SIGINT/SIGTERM stops accepting, finishes in-flight requests and resolves `closed`. */
export async function startServer(models: ModelsInput, o: ServeOptions = {}, handleSignals = true): Promise<RunningServer> {
  const host = o.host ?? SERVE_DEFAULTS.host;
  const app = await createServer(models, { ...o, host });
  let done!: () => void;
  const closed = new Promise<void>((r) => (done = r));
  app.addHook('onClose', async () => done());
  let url: string;
  try {
    url = await app.listen({ host, port: o.port ?? SERVE_DEFAULTS.port });
  } catch (e) {
    await app.close();
    throw e;
  }
  if (handleSignals) {
    const log = o.logger ?? silentLogger;
    const stop = (sig: string) => {
      process.removeListener('SIGINT', onInt);
      process.removeListener('SIGTERM', onTerm);
      log.info(`${sig}: no new connections; finishing the requests in flight`);
      app.close().then(done, (e) => {
        log.warn(`shutdown: ${e?.message ?? e}`);
        done();
      });
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
  }
  return { app, url, closed };
}
