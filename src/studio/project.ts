/**
 * Names from the page, resolved safely inside the project. A class is one folder directly under the project; an
 * image is one file directly in a class folder ("class/file.jpg"). Anything that could leave the project is
 * refused with 400 before the file system is touched: `..`, absolute paths, path separators inside a name, NUL
 * and control characters, hidden names (training ignores them), and symbolic links whose target is outside.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { HttpError } from '../serve/errors.js';
import type { StudioProject } from './context.js';
import { TRASH } from './journal.js';

export { TRASH };


const MAX_NAME = 200;

/** Checks one name (a class folder or a file name); returns it unchanged or throws a 400 saying what is wrong. */
export function checkName(name: unknown, what: 'class' | 'file'): string {
  const label = what === 'class' ? 'a class name' : 'a file name';
  if (typeof name !== 'string' || !name.trim()) throw new HttpError(400, 'bad name', `${label} is needed`);
  if (name.length > MAX_NAME) throw new HttpError(400, 'bad name', `${label} can be at most ${MAX_NAME} characters`);
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new HttpError(400, 'bad name', `${label} cannot contain control characters`);
  if (name.includes('/') || name.includes('\\')) throw new HttpError(400, 'bad name', `${label} cannot contain / or \\ (it would point into another folder)`);
  if (name === '.' || name === '..') throw new HttpError(400, 'bad name', `'${name}' is not allowed as ${label}`);
  if (name.startsWith('.')) throw new HttpError(400, 'bad name', `${label} cannot start with a dot: such folders and files are hidden and training skips them`);
  if (name !== name.trim()) throw new HttpError(400, 'bad name', `${label} cannot start or end with a space`);
  if (path.isAbsolute(name)) throw new HttpError(400, 'bad name', `${label} cannot be a full path`);
  return name;
}

/** True when `p` is `root` or inside it. */
export function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!!rel && !rel.startsWith('..') && !path.isAbsolute(rel));
}

/** Refuses a path that exists and is (or leads through) a link to outside the project. */
async function checkRealInside(project: StudioProject, p: string, shown: string): Promise<void> {
  let real: string;
  try {
    real = await fs.realpath(p);
  } catch (e: any) {
    if (e.code === 'ENOENT') {
      // a dangling link is refused too: it points somewhere we cannot check
      const isLink = await fs.lstat(p).then((s) => s.isSymbolicLink(), () => false);
      if (isLink) throw new HttpError(400, 'outside the project', `'${shown}' is a link to something that does not exist`);
      return;
    }
    throw e;
  }
  if (!isInside(project.root, real)) throw new HttpError(400, 'outside the project', `'${shown}' is a link to a place outside the project folder; the studio only changes files inside it`);
}

/** The absolute path of a class folder (it need not exist). */
export async function classPath(project: StudioProject, name: unknown): Promise<string> {
  const n = checkName(name, 'class');
  const p = path.join(project.root, n);
  if (!isInside(project.root, p) || path.dirname(p) !== project.root) throw new HttpError(400, 'bad name', `'${n}' is not a folder directly in the project`);
  await checkRealInside(project, p, n);
  return p;
}

/** Splits "class/file" into its two checked names. */
export function splitImageRef(ref: unknown): { cls: string; file: string } {
  if (typeof ref !== 'string' || !ref) throw new HttpError(400, 'bad name', 'an image is named "class/file"');
  if (path.isAbsolute(ref) || /^[A-Za-z]:/.test(ref)) throw new HttpError(400, 'bad name', `'${ref.slice(0, 200)}' is a full path; images are named "class/file"`);
  const parts = ref.split('/');
  if (parts.length !== 2) throw new HttpError(400, 'bad name', `'${ref.slice(0, 200)}' is not "class/file"`);
  return { cls: checkName(parts[0], 'class'), file: checkName(parts[1], 'file') };
}

/** The absolute path of an image "class/file" (it need not exist). */
export async function imagePath(project: StudioProject, ref: unknown): Promise<string> {
  const { cls, file } = splitImageRef(ref);
  const dir = await classPath(project, cls);
  const p = path.join(dir, file);
  await checkRealInside(project, p, `${cls}/${file}`);
  return p;
}

/** "class/file" of an absolute path inside the project, or undefined when it is not directly in a class folder. */
export function imageRef(project: StudioProject, abs: string): string | undefined {
  const rel = path.relative(project.root, abs);
  const parts = rel.split(path.sep);
  if (parts.length !== 2 || rel.startsWith('..')) return undefined;
  return parts.join('/');
}

/** The class folders of the project, sorted (hidden folders, files and links leading outside left out). */
export async function listClasses(project: StudioProject): Promise<string[]> {
  const entries = await fs.readdir(project.root, { withFileTypes: true });
  const out: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = path.join(project.root, e.name);
    if (e.isDirectory()) out.push(e.name);
    else if (e.isSymbolicLink()) {
      const real = await fs.realpath(p).catch(() => undefined);
      if (real && isInside(project.root, real) && (await fs.stat(real)).isDirectory()) out.push(e.name);
    }
  }
  return out.sort();
}

/** A file name that is free in `dir` (and not in `taken`): name.jpg, name-2.jpg, name-3.jpg... */
export async function freeName(dir: string, name: string, taken: Set<string> = new Set()): Promise<string> {
  const ext = path.extname(name);
  const stem = name.slice(0, name.length - ext.length);
  for (let i = 1; ; i++) {
    const candidate = i === 1 ? name : `${stem}-${i}${ext}`;
    if (taken.has(path.join(dir, candidate))) continue;
    const used = await fs.lstat(path.join(dir, candidate)).then(() => true, () => false);
    if (!used) return candidate;
  }
}
