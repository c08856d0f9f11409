/**
 * The Train and Review pages' API (JSON; state changes are POSTs, which the studio's auth checks for Origin):
 *   GET  /api/train/options            backbones offered, defaults, the project's image count
 *   GET  /api/train/estimate           ?mode&backbone&epochs: a time estimate in words
 *   GET  /api/runs                     the run history (newest first), each with `resumable`
 *   POST /api/runs                     start a training {mode, backbone, epochs?, augment?, force?}
 *   GET  /api/runs/:id                 one run
 *   POST /api/runs/:id/cancel          stop it at the next safe point
 *   POST /api/runs/:id/resume          continue a stopped run
 *   GET  /api/runs/:id/events          Server-Sent Events: the run's past events, then live ones until it ends
 *                                      (`id:` is the event's number: a reconnecting EventSource sends
 *                                      Last-Event-ID and gets only what it missed; `event: status` carries the
 *                                      run's entry; `event: end` says the run is over)
 *   GET  /api/runs/:id/review          metrics, per-class table, confusion matrix, test predictions, top losses
 *   GET  /api/review/kept              photos kept as labelled; POST /api/review/keep {items: [{path, label}]}
 */
import type { FastifyInstance } from 'fastify';
import { loadImageFolder } from '../data/discover.js';
import { HttpError } from '../serve/errors.js';
import { offeredBackbones } from './backbones.js';
import { estimateTraining, FINETUNE_DEFAULT_EPOCHS, TRANSFER_DEFAULT_EPOCHS } from './estimate.js';
import { JobError, type JobManager, type RunEntry, type StoredEvent } from './jobs.js';
import { KeepList } from './keep-list.js';
import { readRunReview } from './review-data.js';

export interface TrainRoutesContext {
  jobs: JobManager;
  projectDir: string;
  stateDir: string;
  /** Local backbone folders offered besides the installed zoo networks. */
  backbones?: string[];
}

function http(e: unknown): never {
  if (e instanceof JobError) throw new HttpError(e.status, e.status === 404 ? 'not found' : e.status === 409 ? 'not now' : 'bad request', e.message);
  throw e;
}

async function guard<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    return http(e);
  }
}

export async function trainRoutes(app: FastifyInstance, ctx: TrainRoutesContext): Promise<void> {
  const { jobs } = ctx;
  const keep = new KeepList(ctx.stateDir);
  const withResumable = (r: RunEntry) => ({ ...r, resumable: jobs.resumable(r) });
  const imageCount = async () => (await loadImageFolder(ctx.projectDir).catch(() => undefined))?.images.length ?? 0;

  app.get('/api/train/options', async () => {
    const { backbones, default: def } = await offeredBackbones(ctx.backbones);
    return { backbones, defaults: { mode: 'transfer', backbone: def, epochs: { transfer: TRANSFER_DEFAULT_EPOCHS, finetune: FINETUNE_DEFAULT_EPOCHS }, augment: false }, images: await imageCount(), running: jobs.running() ?? null };
  });

  app.get('/api/train/estimate', async (req) => {
    const q = req.query as Record<string, string | undefined>;
    const mode = q.mode === 'finetune' ? 'finetune' : 'transfer';
    const epochs = q.epochs ? Number(q.epochs) : undefined;
    if (epochs !== undefined && !(Number.isInteger(epochs) && epochs >= 1)) throw new HttpError(400, 'bad request', 'epochs must be a whole number of at least 1');
    const images = await imageCount();
    return { images, ...estimateTraining({ mode, backbone: String(q.backbone ?? ''), images, epochs }) };
  });

  app.get('/api/runs', async () => ({ runs: jobs.list().map(withResumable), running: jobs.running()?.id ?? null }));
  app.post('/api/runs', async (req, reply) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    if (typeof b !== 'object' || Array.isArray(b)) throw new HttpError(400, 'bad request', 'send the settings as a JSON object');
    const run = await guard(() => jobs.start({ mode: b.mode as any, backbone: b.backbone as any, epochs: b.epochs === undefined || b.epochs === null || b.epochs === '' ? undefined : Number(b.epochs), augment: Boolean(b.augment), force: Boolean(b.force) }));
    return reply.code(202).send({ run: withResumable(run) });
  });
  app.get('/api/runs/:id', async (req) => ({ run: withResumable(await guard(() => jobs.get((req.params as { id: string }).id))) }));
  app.post('/api/runs/:id/cancel', async (req) => ({ run: withResumable(await guard(() => jobs.cancel((req.params as { id: string }).id))) }));
  app.post('/api/runs/:id/resume', async (req, reply) => reply.code(202).send({ run: withResumable(await guard(() => jobs.resume((req.params as { id: string }).id))) }));

  app.get('/api/runs/:id/events', async (req, reply) => {
    const { id } = req.params as { id: string };
    await guard(() => jobs.get(id));
    const header = req.headers['last-event-id'];
    const after = Number(typeof header === 'string' && header ? header : ((req.query as any)?.after ?? -1));
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', 'x-content-type-options': 'nosniff', connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    const send = (e: StoredEvent | { status: RunEntry }) => {
      if (res.writableEnded) return;
      if ('status' in e) res.write(`event: status\ndata: ${JSON.stringify(withResumable(e.status))}\n\n`);
      else res.write(`id: ${e.seq}\ndata: ${JSON.stringify(e)}\n\n`);
    };
    let sub: Awaited<ReturnType<JobManager['subscribe']>>;
    try {
      sub = await jobs.subscribe(id, Number.isFinite(after) ? after : -1, send);
    } catch (e: any) {
      res.end(`event: failure\ndata: ${JSON.stringify({ error: e?.message ?? String(e) })}\n\n`);
      return;
    }
    const ping = setInterval(() => !res.writableEnded && res.write(': still here\n\n'), 15_000);
    const stop = () => {
      clearInterval(ping);
      sub.unsubscribe();
    };
    req.raw.on('close', stop);
    void sub.ended.then(() => {
      stop();
      if (!res.writableEnded) res.end('event: end\ndata: {}\n\n');
    });
  });

  app.get('/api/runs/:id/review', async (req) => {
    const run = await guard(() => jobs.get((req.params as { id: string }).id));
    const review = await guard(() => readRunReview(run.outDir, ctx.projectDir));
    return { run: withResumable(run), ...review };
  });

  app.get('/api/review/kept', async () => ({ kept: await keep.read() }));
  app.post('/api/review/keep', async (req) => {
    const items = (req.body as any)?.items;
    if (!Array.isArray(items) || !items.length || items.length > 10_000 || !items.every((i) => i && typeof i.path === 'string' && typeof i.label === 'string' && i.path.length < 4096 && i.label.length < 1024)) {
      throw new HttpError(400, 'bad request', 'send {"items": [{"path": "<class>/<file>", "label": "<class>"}, ...]}');
    }
    return { kept: await keep.add(items) };
  });

  app.addHook('preClose', async () => {
    await jobs.close();
  });
}
