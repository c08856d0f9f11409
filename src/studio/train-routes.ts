/**
 * The Train and Review pages' API (JSON; state changes are POSTs, which the studio's auth checks for Origin):
 *   GET  /api/train/options            backbones offered, defaults, the project's image count
 *   GET  /api/train/estimate           ?mode&backbone&epochs: a time estimate in words
 *   GET  /api/train/runs               the run history (newest first), each with `resumable`
 *   POST /api/runs                     start a training {mode, backbone, epochs?, augment?, force?}
 *   GET  /api/runs/:id                 one run
 *   POST /api/runs/:id/cancel          stop it at the next safe point
 *   POST /api/runs/:id/resume          continue a stopped run
 *   GET  /api/runs/:id/events          Server-Sent Events: the run's past events, then live ones until it ends
 *                                      (`id:` is the event's number: a reconnecting EventSource sends
 *                                      Last-Event-ID and gets only what it missed; `event: status` carries the
 *                                      run's entry; `event: end` says the run is over)
 *   GET  /api/runs/:id/review          metrics, per-class table, confusion matrix, test predictions, top losses
 *   GET  /api/runs/:id/label-issues    photos whose label may be wrong (the label-issue finder with the run's
 *                                      backbone, computed once in a worker thread and kept in the run folder;
 *                                      ?fresh=1 computes again), less those kept as labelled or gone
 *   GET  /api/review/kept              photos kept as labelled; POST /api/review/keep {images: ["class/file", ...]}
 * The project is the one open when the request comes (`current()`); each project has its own JobManager.
 */
import type { FastifyInstance } from 'fastify';
import { loadImageFolder } from '../data/discover.js';
import { HttpError } from '../serve/errors.js';
import { offeredBackbones } from './backbones.js';
import { estimateTraining, FINETUNE_DEFAULT_EPOCHS, TRANSFER_DEFAULT_EPOCHS } from './estimate.js';
import { JobError, type JobManager, type RunEntry, type StoredEvent } from './jobs.js';
import { KeepList } from './keep-list.js';
import { readRunReview } from './review-data.js';
import { labelIssuesInThread } from './train-thread.js';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/fs.js';
import type { FolderLabelIssues } from '../train/label-issues.js';

export const LABEL_ISSUES_FILE = 'studio-label-issues.json';

export interface TrainProject {
  jobs: JobManager;
  projectDir: string;
  stateDir: string;
}

export interface TrainRoutesContext {
  /** The open project and its job manager (throws an HttpError when none is open). */
  current(): Promise<TrainProject>;
  /** Local backbone folders offered besides the installed zoo networks. */
  backbones?: string[];
}

/** A context for one fixed project (tests, embedding). */
export function fixedProject(jobs: JobManager, projectDir: string, stateDir: string, backbones?: string[]): TrainRoutesContext {
  return { current: async () => ({ jobs, projectDir, stateDir }), backbones };
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
  const withResumable = (jobs: JobManager, r: RunEntry) => ({ ...r, resumable: jobs.resumable(r) });
  const imageCount = async (projectDir: string) => (await loadImageFolder(projectDir).catch(() => undefined))?.images.length ?? 0;
  const id = (req: { params: unknown }) => (req.params as { id: string }).id;

  app.get('/api/train/options', async () => {
    const { jobs, projectDir } = await ctx.current();
    const { backbones, default: def } = await offeredBackbones(ctx.backbones);
    return { backbones, defaults: { mode: 'transfer', backbone: def, epochs: { transfer: TRANSFER_DEFAULT_EPOCHS, finetune: FINETUNE_DEFAULT_EPOCHS }, augment: false }, images: await imageCount(projectDir), running: jobs.running() ?? null };
  });

  app.get('/api/train/estimate', async (req) => {
    const { projectDir } = await ctx.current();
    const q = req.query as Record<string, string | undefined>;
    const mode = q.mode === 'finetune' ? 'finetune' : 'transfer';
    const epochs = q.epochs ? Number(q.epochs) : undefined;
    if (epochs !== undefined && !(Number.isInteger(epochs) && epochs >= 1)) throw new HttpError(400, 'bad request', 'epochs must be a whole number of at least 1');
    const images = await imageCount(projectDir);
    return { images, ...estimateTraining({ mode, backbone: String(q.backbone ?? ''), images, epochs }) };
  });

  app.get('/api/train/runs', async () => {
    const { jobs } = await ctx.current();
    return { runs: jobs.list().map((r) => withResumable(jobs, r)), running: jobs.running()?.id ?? null };
  });
  app.post('/api/runs', async (req, reply) => {
    const { jobs } = await ctx.current();
    const b = (req.body ?? {}) as Record<string, unknown>;
    if (typeof b !== 'object' || Array.isArray(b)) throw new HttpError(400, 'bad request', 'send the settings as a JSON object');
    const run = await guard(() => jobs.start({ mode: b.mode as any, backbone: b.backbone as any, epochs: b.epochs === undefined || b.epochs === null || b.epochs === '' ? undefined : Number(b.epochs), augment: Boolean(b.augment), force: Boolean(b.force) }));
    return reply.code(202).send({ run: withResumable(jobs, run) });
  });
  app.get('/api/runs/:id', async (req) => {
    const { jobs } = await ctx.current();
    return { run: withResumable(jobs, await guard(() => jobs.get(id(req)))) };
  });
  app.post('/api/runs/:id/cancel', async (req) => {
    const { jobs } = await ctx.current();
    return { run: withResumable(jobs, await guard(() => jobs.cancel(id(req)))) };
  });
  app.post('/api/runs/:id/resume', async (req, reply) => {
    const { jobs } = await ctx.current();
    return reply.code(202).send({ run: withResumable(jobs, await guard(() => jobs.resume(id(req)))) });
  });

  app.get('/api/runs/:id/events', async (req, reply) => {
    const { jobs } = await ctx.current();
    const runId = id(req);
    await guard(() => jobs.get(runId));
    const header = req.headers['last-event-id'];
    const after = Number(typeof header === 'string' && header ? header : ((req.query as any)?.after ?? -1));
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', 'x-content-type-options': 'nosniff', connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    const send = (e: StoredEvent | { status: RunEntry }) => {
      if (res.writableEnded) return;
      if ('status' in e) res.write(`event: status\ndata: ${JSON.stringify(withResumable(jobs, e.status))}\n\n`);
      else res.write(`id: ${e.seq}\ndata: ${JSON.stringify(e)}\n\n`);
    };
    let sub: Awaited<ReturnType<JobManager['subscribe']>>;
    try {
      sub = await jobs.subscribe(runId, Number.isFinite(after) ? after : -1, send);
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
    const { jobs, projectDir, stateDir } = await ctx.current();
    const run = await guard(() => jobs.get(id(req)));
    const review = await guard(() => readRunReview(run.outDir, projectDir));
    const kept = await new KeepList(stateDir).read();
    return { run: withResumable(jobs, run), ...review, kept: Object.keys(kept) };
  });

  const finding = new Map<string, Promise<FolderLabelIssues & { computedAt: string }>>();
  app.get('/api/runs/:id/label-issues', async (req) => {
    const { jobs, projectDir, stateDir } = await ctx.current();
    const run = await guard(() => jobs.get(id(req)));
    if (run.status !== 'done') throw new HttpError(409, 'not finished', 'label issues are looked for with a finished training; open one');
    const file = path.join(run.outDir, LABEL_ISSUES_FILE);
    const fresh = (req.query as any)?.fresh === '1';
    let p = finding.get(file);
    if (!p) {
      p = (async () => {
        if (!fresh) {
          const cached = await fs.readFile(file, 'utf8').then(JSON.parse, () => undefined);
          if (cached) return cached;
        }
        const r = await labelIssuesInThread(projectDir, { backbone: run.backbone, threads: 1 });
        const out = { ...r, computedAt: new Date().toISOString() };
        await writeFileAtomic(file, JSON.stringify(out));
        return out;
      })();
      finding.set(file, p);
      void p.finally(() => finding.delete(file)).catch(() => {});
    }
    let r: FolderLabelIssues & { computedAt: string };
    try {
      r = await p;
    } catch (e: any) {
      throw new HttpError(422, 'cannot look for label issues', e?.message ?? String(e));
    }
    const kept = await new KeepList(stateDir).read();
    const issues = r.issues
      .filter((i) => !Object.hasOwn(kept, i.file) && existsSync(path.join(projectDir, i.file)))
      .map((i) => ({ path: i.file, given: i.given, suggested: i.suggested, score: i.score, kind: i.kind, twin: i.twin }));
    return { issues, checked: r.checked, images: r.images, estimatedIssues: (r as any).estimatedIssues, computedAt: r.computedAt, hidden: r.issues.length - issues.length };
  });

  app.get('/api/review/kept', async () => ({ kept: await new KeepList((await ctx.current()).stateDir).read() }));
  app.post('/api/review/keep', async (req) => {
    const { stateDir } = await ctx.current();
    const images = (req.body as any)?.images;
    if (!Array.isArray(images) || !images.length || images.length > 100_000 || !images.every((i) => typeof i === 'string' && /^[^/]+\/.+/.test(i) && i.length < 4096)) {
      throw new HttpError(400, 'bad request', 'name the photos to keep as labelled: {"images": ["<class>/<file>", ...]}');
    }
    return { kept: await new KeepList(stateDir).add(images) };
  });
}
