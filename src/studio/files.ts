/**
 * The Data page's write side, over HTTP: every route runs one journaled file action (actions.ts) and answers what
 * it did, so the page can offer Undo. Class names and images come in JSON bodies or the query, never as path
 * segments, and are checked by project.ts before anything is touched.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from '../serve/errors.js';
import { addClass, addImages, deleteClass, journalOf, mergeClass, moveImages, removeImages, renameClass, type Upload } from './actions.js';
import type { StudioContext } from './context.js';
import { classPath } from './project.js';

export const UPLOAD_LIMITS = { fileSize: 50 * 1024 * 1024, files: 200, total: 300 * 1024 * 1024 };

function body(req: FastifyRequest): Record<string, unknown> {
  const b = req.body;
  if (!b || typeof b !== 'object' || Buffer.isBuffer(b)) throw new HttpError(400, 'bad request', 'send a JSON object');
  return b as Record<string, unknown>;
}

async function uploads(req: FastifyRequest): Promise<Upload[]> {
  if (!req.isMultipart()) throw new HttpError(400, 'no files', 'send the images as multipart/form-data file fields');
  const files: Upload[] = [];
  let total = 0;
  for await (const part of req.parts({ limits: { fileSize: UPLOAD_LIMITS.fileSize, files: UPLOAD_LIMITS.files } })) {
    if (part.type !== 'file') continue;
    const bytes = await part.toBuffer();
    total += bytes.length;
    if (total > UPLOAD_LIMITS.total) throw new HttpError(413, 'too much at once', `the files add up to more than ${UPLOAD_LIMITS.total / 1024 / 1024} MB; send fewer at a time`);
    files.push({ name: part.filename || part.fieldname, bytes });
  }
  if (!files.length) throw new HttpError(400, 'no files', 'the request has no files');
  return files;
}

export async function fileRoutes(app: FastifyInstance, ctx: StudioContext): Promise<void> {
  const journal = () => journalOf(ctx.requireProject(), ctx.logger);

  app.post('/api/classes/add', async (req) => ({ action: await addClass(await journal(), body(req).name) }));
  app.post('/api/classes/rename', async (req) => {
    const b = body(req);
    return { action: await renameClass(await journal(), b.from, b.to) };
  });
  app.post('/api/classes/merge', async (req) => {
    const b = body(req);
    return { action: await mergeClass(await journal(), b.from, b.into) };
  });
  app.post('/api/classes/delete', async (req) => ({ action: await deleteClass(await journal(), body(req).name) }));
  app.post('/api/images/add', async (req) => {
    const cls = (req.query as any)?.class;
    await classPath(ctx.requireProject(), cls); // refuse a bad name before reading the files
    return addImages(await journal(), cls, await uploads(req));
  });
  app.post('/api/images/remove', async (req) => ({ action: await removeImages(await journal(), body(req).images) }));
  app.post('/api/images/move', async (req) => {
    const b = body(req);
    return { action: await moveImages(await journal(), b.images, b.to) };
  });
  app.get('/api/actions', async () => ({ actions: (await journal()).list() }));
  app.post('/api/actions/undo', async (req) => {
    const id = body(req).id;
    if (typeof id !== 'string') throw new HttpError(400, 'bad request', 'which action? send {"id": "..."}');
    return { action: await (await journal()).undo(id) };
  });
}
