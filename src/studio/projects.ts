/**
 * Projects: the one open now, the recent ones (from the state folders in TLEARN_HOME/studio/projects), opening a
 * folder, and creating a new empty one (default ~/tlearn-projects/<name>).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../serve/errors.js';
import { recentProjects, type StudioContext } from './context.js';
import { checkName } from './project.js';

export function defaultProjectsFolder(): string {
  return path.join(os.homedir(), 'tlearn-projects');
}

function folderArg(v: unknown, what: string): string {
  if (typeof v !== 'string' || !v.trim()) throw new HttpError(400, 'folder needed', `${what} is needed`);
  if (v.includes('\0')) throw new HttpError(400, 'bad folder', `${what} cannot contain NUL`);
  const expanded = v.trim().replace(/^~(?=$|[\\/])/, os.homedir());
  if (!path.isAbsolute(expanded)) throw new HttpError(400, 'bad folder', `${what} must be a full path (like ${defaultProjectsFolder()})`);
  return path.resolve(expanded);
}

export async function projectRoutes(app: FastifyInstance, ctx: StudioContext): Promise<void> {
  app.get('/api/projects', async (req) => ({
    current: ctx.project ? { name: ctx.project.name, root: ctx.project.root } : null,
    // ?recent=0: only the open project (the page's start)
    recent: (req.query as any)?.recent === '0' ? [] : await recentProjects(ctx.home),
    defaultFolder: defaultProjectsFolder(),
  }));

  app.post('/api/projects/open', async (req) => {
    const folder = folderArg((req.body as any)?.folder, 'the project folder');
    const p = await ctx.openProject(folder);
    return { current: { name: p.name, root: p.root } };
  });

  app.post('/api/projects/create', async (req) => {
    const b = (req.body ?? {}) as any;
    const name = checkName(b.name, 'file');
    const parent = b.parent ? folderArg(b.parent, 'where to make it') : defaultProjectsFolder();
    const folder = path.join(parent, name);
    const existing = await fs.readdir(folder).catch(() => undefined);
    if (existing?.length) throw new HttpError(409, 'folder not empty', `${folder} already exists and has files in it: open it as a project instead, or choose another name`);
    await fs.mkdir(folder, { recursive: true });
    const p = await ctx.openProject(folder);
    return { current: { name: p.name, root: p.root } };
  });
}
