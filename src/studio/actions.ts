/**
 * The file actions of the studio, each planned as journal steps (see journal.ts) and run one at a time: add,
 * rename, merge and delete a class; add (upload), remove and move images. Deleted things go to the project's
 * hidden trash folder (.tlearn-trash/<action>/...), so every action can be undone. A move never overwrites a file:
 * a name already taken in the destination gets a new one (photo.jpg → photo-2.jpg).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { HttpError } from '../serve/errors.js';
import { HEAD_BYTES, IMAGE_EXTENSIONS, sniffImageFormat, type ImageFormat } from '../image/formats.js';
import type { Logger } from '../util/log.js';
import type { StudioProject } from './context.js';
import { Journal, newActionId, UPLOAD_PREFIX, type ActionSummary, type Step } from './journal.js';
import { classPath, freeName, imagePath, TRASH } from './project.js';

const journals = new Map<string, Promise<Journal>>();

/** The project's journal, opened once (opening completes interrupted actions). */
export function journalOf(project: StudioProject, log?: Logger): Promise<Journal> {
  let j = journals.get(project.stateDir);
  if (!j) {
    j = Journal.open(project, log);
    journals.set(project.stateDir, j);
    j.catch(() => journals.delete(project.stateDir));
  }
  return j;
}

/** Forgets opened journals (tests that restart a studio in the same process). */
export function forgetJournals(): void {
  journals.clear();
}

const rel = (project: StudioProject, abs: string) => path.relative(project.root, abs).split(path.sep).join('/');
const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;

async function isDir(p: string): Promise<boolean> {
  return fs.stat(p).then((s) => s.isDirectory(), () => false);
}

async function needClass(project: StudioProject, name: unknown): Promise<string> {
  const p = await classPath(project, name);
  if (!(await isDir(p))) throw new HttpError(404, 'no such class', `there is no class '${String(name)}'`);
  return p;
}

export async function addClass(j: Journal, name: unknown): Promise<ActionSummary> {
  const p = await classPath(j.project, name);
  return j.run('add class', `Add class '${name}'`, [], {
    prepare: async () => {
      if (await fs.lstat(p).then(() => true, () => false)) throw new HttpError(409, 'name taken', `there is already a class (or file) named '${name}'`);
      return [{ op: 'mkdir', path: rel(j.project, p) }];
    },
  });
}

export async function renameClass(j: Journal, from: unknown, to: unknown): Promise<ActionSummary> {
  const a = await needClass(j.project, from);
  const b = await classPath(j.project, to);
  if (a === b) throw new HttpError(400, 'same name', 'the new name is the same as the old one');
  return j.run('rename class', `Rename class '${from}' to '${to}'`, [], {
    prepare: async () => {
      if (await fs.lstat(b).then(() => true, () => false)) throw new HttpError(409, 'name taken', `there is already a class named '${to}': to put both together, use Merge`);
      return [{ op: 'move', from: rel(j.project, a), to: rel(j.project, b) }];
    },
  });
}

/** Moves every image of `from` into `into` (clashes renamed), then the emptied folder to the trash. */
export async function mergeClass(j: Journal, from: unknown, into: unknown): Promise<ActionSummary> {
  const a = await needClass(j.project, from);
  const b = await needClass(j.project, into);
  if (a === b) throw new HttpError(400, 'same class', 'a class cannot be merged into itself');
  const id = newActionId();
  return j.run('merge classes', `Merge class '${from}' into '${into}'`, [], {
    id,
    prepare: async () => {
      const steps: Step[] = [];
      const taken = new Set<string>();
      for (const e of await fs.readdir(a, { withFileTypes: true })) {
        if (e.name.startsWith('.') || !e.isFile()) continue; // hidden files and sub-folders go to the trash with the folder
        const name = await freeName(b, e.name, taken);
        taken.add(path.join(b, name));
        steps.push({ op: 'move', from: rel(j.project, path.join(a, e.name)), to: rel(j.project, path.join(b, name)) });
      }
      steps.push({ op: 'move', from: rel(j.project, a), to: `${TRASH}/${id}/${path.basename(a)}` });
      return steps;
    },
  });
}

export async function deleteClass(j: Journal, name: unknown): Promise<ActionSummary> {
  const a = await needClass(j.project, name);
  const id = newActionId();
  return j.run('delete class', `Delete class '${name}'`, [{ op: 'move', from: rel(j.project, a), to: `${TRASH}/${id}/${path.basename(a)}` }], { id });
}

function uniqueRefs(refs: unknown): string[] {
  if (!Array.isArray(refs) || !refs.length) throw new HttpError(400, 'no images', 'name at least one image ("class/file")');
  if (refs.length > 100_000) throw new HttpError(413, 'too many images', 'at most 100000 images per action');
  return [...new Set(refs.map(String))];
}

export async function removeImages(j: Journal, refs: unknown): Promise<ActionSummary> {
  const list = uniqueRefs(refs);
  const paths = await Promise.all(list.map((r) => imagePath(j.project, r)));
  const id = newActionId();
  return j.run('remove images', list.length === 1 ? `Remove ${list[0]}` : `Remove ${plural(list.length, 'image')}`, [], {
    id,
    prepare: async () => {
      const steps: Step[] = [];
      for (const [i, p] of paths.entries()) {
        if (!(await fs.stat(p).then((s) => s.isFile(), () => false))) throw new HttpError(404, 'no such image', `${list[i]} is not there (already moved or removed?)`);
        steps.push({ op: 'move', from: rel(j.project, p), to: `${TRASH}/${id}/${rel(j.project, p)}` });
      }
      return steps;
    },
  });
}

export async function moveImages(j: Journal, refs: unknown, toClass: unknown): Promise<ActionSummary> {
  const list = uniqueRefs(refs);
  const paths = await Promise.all(list.map((r) => imagePath(j.project, r)));
  const dest = await needClass(j.project, toClass);
  return j.run('move images', list.length === 1 ? `Move ${list[0]} to '${toClass}'` : `Move ${plural(list.length, 'image')} to '${toClass}'`, [], {
    prepare: async () => {
      const steps: Step[] = [];
      const taken = new Set<string>();
      for (const [i, p] of paths.entries()) {
        if (!(await fs.stat(p).then((s) => s.isFile(), () => false))) throw new HttpError(404, 'no such image', `${list[i]} is not there (already moved or removed?)`);
        if (path.dirname(p) === dest) continue;
        const name = await freeName(dest, path.basename(p), taken);
        taken.add(path.join(dest, name));
        steps.push({ op: 'move', from: rel(j.project, p), to: rel(j.project, path.join(dest, name)) });
      }
      if (!steps.length) throw new HttpError(400, 'nothing to move', `the images are already in '${toClass}'`);
      return steps;
    },
  });
}

const EXT: Record<ImageFormat, string> = { jpeg: '.jpg', png: '.png', gif: '.gif', webp: '.webp', bmp: '.bmp', tiff: '.tif', avif: '.avif', heif: '.heic', svg: '.svg' };

/** A safe file name for an uploaded file: its base name without separators, control characters or a leading dot, with an image extension. */
export function uploadName(given: string, format: ImageFormat, index: number): string {
  let n = (given.split(/[\\/]/).pop() ?? '').replace(/[\u0000-\u001f\u007f]/g, '').trim().replace(/^\.+/, '');
  if (n.length > 150) n = n.slice(-150);
  if (!n) n = `image-${index + 1}`;
  if (!IMAGE_EXTENSIONS.includes(path.extname(n).toLowerCase())) n += EXT[format];
  return n;
}

export interface Upload {
  name: string;
  bytes: Buffer;
}

export interface UploadResult {
  action?: ActionSummary;
  added: string[];
  refused: Array<{ name: string; reason: string }>;
}


/**
 * Adds images to a class: each file's content is sniffed (what is not an image is refused, with the reason),
 * written under a hidden temporary name and flushed, then renamed into place by one journaled action.
 */
export async function addImages(j: Journal, cls: unknown, files: Upload[]): Promise<UploadResult> {
  const dir = await needClass(j.project, cls);
  const refused: UploadResult['refused'] = [];
  const ok: Array<{ name: string; bytes: Buffer }> = [];
  files.forEach((f, i) => {
    if (!f.bytes.length) return refused.push({ name: f.name, reason: 'the file is empty' });
    const format = sniffImageFormat(f.bytes.subarray(0, HEAD_BYTES));
    if (!format) return refused.push({ name: f.name, reason: 'not an image (JPEG, PNG, GIF, WebP, BMP, TIFF, AVIF, HEIF or SVG)' });
    ok.push({ name: uploadName(f.name, format, i), bytes: f.bytes });
  });
  if (!ok.length) return { added: [], refused };
  const id = newActionId();
  const temps: string[] = [];
  let action: ActionSummary;
  try {
    for (const [i, f] of ok.entries()) {
      const tmp = path.join(dir, `${UPLOAD_PREFIX}${id}-${i}`);
      const h = await fs.open(tmp, 'wx');
      try {
        await h.writeFile(f.bytes);
        await h.sync();
      } finally {
        await h.close();
      }
      temps.push(tmp);
    }
    action = await j.run('add images', ok.length === 1 ? `Add ${ok[0]!.name} to '${cls}'` : `Add ${plural(ok.length, 'image')} to '${cls}'`, [], {
      id,
      prepare: async () => {
        const taken = new Set<string>();
        const steps: Step[] = [];
        for (const [i, f] of ok.entries()) {
          const name = await freeName(dir, f.name, taken);
          taken.add(path.join(dir, name));
          steps.push({ op: 'move', from: rel(j.project, temps[i]!), to: rel(j.project, path.join(dir, name)) });
        }
        return steps;
      },
    });
  } catch (e) {
    await Promise.all(temps.map((t) => fs.rm(t, { force: true })));
    throw e;
  }
  const added = j.stepsOf(id).flatMap((s) => (s.op === 'move' ? [s.to] : []));
  return { action, added, refused };
}

/** Removes upload temporaries that no action refers to (left by a studio killed while receiving files). */
export async function sweepUploads(project: StudioProject, classes: string[]): Promise<number> {
  let n = 0;
  for (const c of classes) {
    const dir = path.join(project.root, c);
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    for (const f of names) {
      if (f.startsWith(UPLOAD_PREFIX)) {
        await fs.rm(path.join(dir, f), { force: true });
        n++;
      }
    }
  }
  return n;
}
