/**
 * Runs of the open project, from <state dir>/runs.json (written by the training job manager): the list, trying a
 * run's model on uploaded images (the model loaded once with serve's loader and answered by serve's classify
 * code), and its export as a zip download (ONNX, TF.js or the web folder) with the `tlearn serve` command.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import yazl from 'yazl';
import { EXPORT_FORMATS, exportClassifier, type ExportFormat } from '../export/export.js';
import { HttpError } from '../serve/errors.js';
import { loadServedModels, type ServedModel } from '../serve/models.js';
import { classifyImages, type ServeLimits } from '../serve/routes.js';
import { checkImage } from '../serve/images.js';
import { readJson, STATE_FILES, type StudioContext, type StudioProject } from './context.js';

export type RunStatus = 'running' | 'done' | 'failed' | 'cancelled' | 'stopped';

/** One entry of runs.json (the contract with the training job manager). */
export interface RunEntry {
  id: string;
  /** The run folder (normally <state dir>/runs/<id>). */
  outDir: string;
  mode: string;
  startedAt: string;
  status: RunStatus;
  testAccuracy?: number;
}

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export async function readRuns(p: StudioProject): Promise<RunEntry[]> {
  const runs = await readJson<RunEntry[]>(path.join(p.stateDir, STATE_FILES.runs), []);
  return Array.isArray(runs) ? runs.filter((r) => r && typeof r.id === 'string' && RUN_ID.test(r.id) && typeof r.outDir === 'string') : [];
}

/** A finished run by id, or the latest finished one when id is empty. */
export async function findRun(p: StudioProject, id: unknown): Promise<RunEntry> {
  const runs = await readRuns(p);
  if (id !== undefined && id !== '') {
    if (typeof id !== 'string' || !RUN_ID.test(id)) throw new HttpError(400, 'bad run', 'a run id is letters, digits, ".", "_" and "-"');
    const r = runs.find((x) => x.id === id);
    if (!r) throw new HttpError(404, 'no such run', `this project has no run '${id}'`);
    if (r.status !== 'done') throw new HttpError(409, 'run not finished', `run '${id}' is ${r.status}: only a finished run has a model`);
    return r;
  }
  const done = runs.filter((r) => r.status === 'done').sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  if (!done.length) throw new HttpError(409, 'no model yet', 'train a model first (Train page): Try and Export use a finished run');
  return done[0]!;
}

export function serveCommand(r: RunEntry): string {
  return `tlearn serve ${/^[\w./-]+$/.test(r.outDir) ? r.outDir : `'${r.outDir.replace(/'/g, `'\\''`)}'`}`;
}

const TRY_LIMITS: ServeLimits = { bodyLimit: 20 * 1024 * 1024, maxPixels: 50_000_000, maxImages: 16 };

export async function runRoutes(app: FastifyInstance, ctx: StudioContext): Promise<void> {
  const loaded = new Map<string, Promise<ServedModel>>();
  const modelOf = (r: RunEntry) => {
    const key = `${r.outDir}`;
    let m = loaded.get(key);
    if (!m) {
      // one model at a time: the previous one is released
      for (const [k, old] of loaded) {
        loaded.delete(k);
        old.then((o) => o.runner.close(), () => {});
      }
      m = loadServedModels([{ name: r.id, path: r.outDir }], { logger: ctx.logger }).then((x) => x[0]!);
      loaded.set(key, m);
      m.catch(() => loaded.delete(key));
    }
    return m;
  };
  app.addHook('onClose', async () => {
    for (const m of loaded.values()) await m.then((o) => o.runner.close(), () => {});
  });

  app.get('/api/runs', async () => {
    const p = ctx.requireProject();
    const runs = await readRuns(p);
    return { runs: runs.map((r) => ({ ...r, serve: serveCommand(r) })) };
  });

  app.get('/api/try/model', async (req) => {
    const r = await findRun(ctx.requireProject(), (req.query as any)?.run);
    const m = await modelOf(r);
    return { run: r.id, card: m.card };
  });

  app.post('/api/try', async (req: FastifyRequest) => {
    const q = req.query as any;
    const r = await findRun(ctx.requireProject(), q?.run);
    const m = await modelOf(r);
    let bytes: Buffer | undefined;
    if (req.isMultipart()) {
      const f = await req.file({ limits: { fileSize: TRY_LIMITS.bodyLimit } });
      bytes = f ? await f.toBuffer() : undefined;
    } else if (Buffer.isBuffer(req.body)) bytes = req.body;
    if (!bytes) throw new HttpError(400, 'no image', 'send one image (as the body or a multipart file)');
    const threshold = q?.threshold === undefined || q.threshold === '' ? (m.classifier.metadata.threshold?.value ?? 0) : Number(q.threshold);
    if (!(threshold >= 0 && threshold <= 1)) throw new HttpError(400, 'bad threshold', 'the threshold is a number from 0 to 1');
    await checkImage({ name: '', bytes }, 0, 1, TRY_LIMITS.maxPixels);
    const [a] = await classifyImages(m, [{ name: 'image', bytes }], { top: 5, threshold }, TRY_LIMITS);
    return { run: r.id, threshold, top: a!.top, unknown: a!.unknown, ms: a!.ms };
  });

  app.get('/api/export', async (req: FastifyRequest, reply: FastifyReply) => {
    const q = req.query as any;
    const p = ctx.requireProject();
    const r = await findRun(p, q?.run);
    const format = q?.format as ExportFormat;
    if (!EXPORT_FORMATS.includes(format)) throw new HttpError(400, 'bad format', `choose one of ${EXPORT_FORMATS.join(', ')}`);
    const out = path.join(p.stateDir, 'exports', r.id, format);
    await fs.rm(out, { recursive: true, force: true });
    const res = await exportClassifier(r.outDir, { format, out: format === 'onnx' ? path.join(out, 'model.onnx') : out });
    const zip = new yazl.ZipFile();
    const base = out;
    const files: string[] = [];
    const walk = async (dir: string) => {
      for (const e of await fs.readdir(dir, { withFileTypes: true })) {
        const f = path.join(dir, e.name);
        if (e.isDirectory()) await walk(f);
        else if (e.isFile()) files.push(f);
      }
    };
    await walk(base);
    const folder = `${p.name}-${r.id}-${format}`.replace(/[^\w.-]+/g, '_');
    for (const f of files.sort()) zip.addFile(f, `${folder}/${path.relative(base, f).split(path.sep).join('/')}`);
    zip.end();
    ctx.logger.info(`studio: exported run ${r.id} as ${format} (${res.files.length} files, ${(res.bytes / 1e6).toFixed(1)} MB)`);
    return reply.headers({ 'content-type': 'application/zip', 'content-disposition': `attachment; filename="${folder}.zip"`, 'cache-control': 'no-store' }).send(zip.outputStream);
  });
}
