/**
 * createStudioServer: fastify on loopback with the studio's plugins. Every plugin is a function
 * (app, ctx) => Promise<void> registered in its own fastify scope after the shared checks (Host, token, Origin)
 * and body parsers; STUDIO_PLUGINS lists the built-in ones and `options.plugins` adds more.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import { checkExposure } from '../serve/server.js';
import { errorAnswer, HttpError } from '../serve/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { journalOf, sweepUploads } from './actions.js';
import { installStudioAuth, newToken } from './auth.js';
import { describeProject, studioHome, type StudioContext, type StudioJobs, type StudioProject } from './context.js';
import { dataRoutes } from './data.js';
import { fileRoutes, UPLOAD_LIMITS } from './files.js';
import { pageRoutes } from './pages.js';
import { listClasses } from './project.js';
import { projectRoutes } from './projects.js';
import { runRoutes } from './runs.js';
import { trainPlugin } from './train-plugin.js';

export type StudioPlugin = (app: FastifyInstance, ctx: StudioContext) => Promise<void>;

/** The built-in plugins, in order. The training job manager adds its own (Train and Review routes) here. */
export const STUDIO_PLUGINS: StudioPlugin[] = [async (app) => pageRoutes(app), projectRoutes, dataRoutes, fileRoutes, runRoutes, trainPlugin];

export interface StudioOptions {
  /** The project folder to open (a folder of class folders); none: the page lists recent projects. */
  folder?: string;
  /** Default 127.0.0.1. Anything else is reachable from other machines: the token is still required. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** The access token (default: a new random one). */
  token?: string;
  logger?: Logger;
  /** TLEARN_HOME/studio by default. */
  home?: string;
  /** The training job manager's slot. */
  jobs?: StudioJobs;
  /** More plugins, registered after the built-in ones. */
  plugins?: StudioPlugin[];
}

export interface StudioServer {
  app: FastifyInstance;
  /** http://host:port (no token). */
  url: string;
  token: string;
  /** The URL to open: url/?token=... */
  openUrl: string;
  ctx: StudioContext;
  /** Every route (method and URL pattern), for tests and docs. */
  routes: Array<{ method: string; url: string }>;
  close(): Promise<void>;
}

export async function createStudioServer(o: StudioOptions = {}): Promise<StudioServer> {
  const host = o.host ?? '127.0.0.1';
  const token = o.token ?? newToken();
  checkExposure(host, { apiKey: token });
  const log = o.logger ?? silentLogger;
  const ctx: StudioContext = {
    project: null,
    logger: log,
    home: o.home ?? studioHome(),
    jobs: o.jobs ?? {},
    async openProject(folder: string): Promise<StudioProject> {
      const p = await describeProject(folder, ctx.home);
      await journalOf(p, log); // completes any action a killed studio left half done
      const swept = await sweepUploads(p, await listClasses(p));
      if (swept) log.info(`studio: removed ${swept} unfinished upload${swept > 1 ? 's' : ''}`);
      ctx.project = p;
      await ctx.jobs.onProject?.(p);
      return p;
    },
    requireProject(): StudioProject {
      if (!ctx.project) throw new HttpError(409, 'no project open', 'open or create a project first (the Projects page)');
      return ctx.project;
    },
  };
  if (o.folder) await ctx.openProject(o.folder);

  const app = Fastify({ logger: false, bodyLimit: UPLOAD_LIMITS.total, return503OnClosing: true, forceCloseConnections: true });
  app.setErrorHandler((e, req, reply) => {
    const a = errorAnswer(e, UPLOAD_LIMITS.total);
    if (a.status >= 500 && a.status !== 503) log.warn(`studio: ${req.method} ${req.url.split('?')[0]}: ${(e as Error)?.stack ?? e}`);
    void reply.code(a.status).headers(a.headers).send(a.body);
  });
  app.setNotFoundHandler((req, reply) => void reply.code(404).send({ error: 'not found', detail: `no page or action at ${req.method} ${req.url.split('?')[0]}` }));
  const routes: StudioServer['routes'] = [];
  app.addHook('onRoute', (r) => {
    for (const m of [r.method].flat()) if (m !== 'HEAD') routes.push({ method: m, url: r.url });
  });
  installStudioAuth(app, token, host);
  await app.register(multipart, { limits: { fileSize: UPLOAD_LIMITS.fileSize, files: UPLOAD_LIMITS.files } });
  for (const type of [/^image\/[\w.+-]+$/i, 'application/octet-stream']) {
    app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: 20 * 1024 * 1024 }, (_req, body, done) => done(null, body));
  }
  for (const plugin of [...STUDIO_PLUGINS, ...(o.plugins ?? [])]) await app.register(async (scope) => plugin(scope, ctx));

  let url: string;
  try {
    url = await app.listen({ host, port: o.port ?? 0 });
  } catch (e) {
    await app.close();
    throw e;
  }
  // the address as the Host check expects it (listen may answer with another spelling)
  const port = Number(new URL(url).port);
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  url = `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`;
  return { app, url, token, openUrl: `${url}/?token=${token}`, ctx, routes, close: () => app.close() };
}
