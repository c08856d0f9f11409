/**
 * The studio's action log under a hard kill: SIGKILL the studio (a child process, each file step slowed down by
 * TLEARN_STUDIO_TEST_STEP_DELAY_MS) in the middle of moving 200 images, restart it: the interrupted move is
 * completed, every image is in exactly one place, none lost or duplicated, and Undo puts them all back
 * byte-identical.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { createStudioServer } from '../src/studio/index.js';
import { forgetJournals } from '../src/studio/actions.js';
import { ROOT, tmpDir } from './helpers.js';
import { makeProject, post, snapshot } from './studio-helpers.js';

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function startChild(folder: string, env: Record<string, string>): Promise<{ child: ChildProcess; url: string; token: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test', 'studio-child.ts'), folder], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout! });
    rl.once('line', (line) => resolve({ child, ...JSON.parse(line) }));
    child.once('exit', (code) => reject(new Error(`the studio exited (${code}) before printing its address: ${err}`)));
  });
}

const names = async (dir: string) => (await fs.readdir(dir)).filter((n) => !n.startsWith('.')).sort();

describe('SIGKILL during a bulk move of 200 images', () => {
  it('completes the move at restart: every image in exactly one place, none lost or duplicated; undo restores them byte-identical', async () => {
    const root = await makeProject(tmpDir('tlearn-studio-kill-'), { source: 200, target: 3 }, 24);
    // two clashing names in the target: they must get new names, not overwrite
    await fs.copyFile(path.join(root, 'target', 'img_0000.jpg'), path.join(root, 'target', 'keep-a.jpg'));
    const before = await snapshot(root);
    const contents = [...before].filter(([k]) => !k.endsWith('/')).map(([, v]) => v).sort();
    const home = process.env.TLEARN_HOME!;
    const { child, url, token } = await startChild(root, { TLEARN_HOME: home, TLEARN_STUDIO_TEST_STEP_DELAY_MS: '15' });
    const images = (await names(path.join(root, 'source'))).map((n) => `source/${n}`);
    expect(images.length).toBe(200);
    const moving = post(url, token, '/api/images/move', { images, to: 'target' }).catch((e) => e);
    // wait until part of the move is done, then kill the studio without warning
    for (let i = 0; i < 400; i++) {
      const left = (await names(path.join(root, 'source'))).length;
      if (left < 170) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await moving;
    const leftInSource = (await names(path.join(root, 'source'))).length;
    expect(leftInSource, 'killed in the middle of the move').toBeGreaterThan(0);
    expect(leftInSource).toBeLessThan(200);
    // in between: already no image in two places
    const mid = await snapshot(root);
    expect([...mid].filter(([k]) => !k.endsWith('/')).map(([, v]) => v).sort()).toEqual(contents);

    // restart (in this process): the log shows an unfinished action, which is completed
    forgetJournals();
    const s = await createStudioServer({ folder: root });
    try {
      const after = await snapshot(root);
      const files = [...after].filter(([k]) => !k.endsWith('/'));
      expect(files.map(([, v]) => v).sort(), 'same contents, each once').toEqual(contents);
      expect(await names(path.join(root, 'source'))).toEqual([]);
      expect((await names(path.join(root, 'target'))).length).toBe(204);
      // the clashes got new names; the target's own files are untouched
      for (const k of ['target/img_0000.jpg', 'target/img_0001.jpg', 'target/img_0002.jpg', 'target/keep-a.jpg']) expect(after.get(k), k).toBe(before.get(k));
      expect(after.get('target/img_0000-2.jpg')).toBe(before.get('source/img_0000.jpg'));
      const actions = (await (await fetch(`${s.url}/api/actions`, { headers: { authorization: `Bearer ${s.token}` } })).json()).actions;
      const move = actions.find((a: any) => a.kind === 'move images');
      expect(move.recovered).toBe(true);
      // undo: every image back where it was, byte-identical
      const u = await post(s.url, s.token, '/api/actions/undo', { id: move.id });
      expect(u.status).toBe(200);
      const undone = await snapshot(root);
      expect(new Map([...undone].filter(([k]) => !k.startsWith('.tlearn-trash')))).toEqual(before);
    } finally {
      await s.close();
    }
  });

  it('finishes an interrupted undo too, and cleans up files of an upload that never started', async () => {
    const root = await makeProject(tmpDir('tlearn-studio-kill2-'), { a: 60, b: 1 }, 24);
    const before = await snapshot(root);
    const home = process.env.TLEARN_HOME!;
    forgetJournals();
    const first = await createStudioServer({ folder: root });
    const images = (await names(path.join(root, 'a'))).map((n) => `a/${n}`);
    const mv = await post(first.url, first.token, '/api/images/remove', { images });
    expect(mv.status).toBe(200);
    await first.close();
    // a half-received upload left behind by a killed studio
    await fs.writeFile(path.join(root, 'b', '.tlearn-upload-zzz-0'), 'partial');
    const { child, url, token } = await startChild(root, { TLEARN_HOME: home, TLEARN_STUDIO_TEST_STEP_DELAY_MS: '20' });
    const undoing = post(url, token, '/api/actions/undo', { id: mv.body.action.id }).catch((e) => e);
    for (let i = 0; i < 400; i++) {
      if ((await names(path.join(root, 'a'))).length >= 10) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await undoing;
    expect((await names(path.join(root, 'a'))).length).toBeLessThan(60);
    forgetJournals();
    const s = await createStudioServer({ folder: root });
    try {
      const after = await snapshot(root);
      expect(new Map([...after].filter(([k]) => !k.startsWith('.tlearn-trash')))).toEqual(before);
    } finally {
      await s.close();
    }
  });
});

describe('a log line cut short by a crash', () => {
  it('is skipped, and the next action still gets a line of its own (it can be undone after a restart)', async () => {
    const root = await makeProject(tmpDir('tlearn-studio-cut-'), { a: 3, b: 1 }, 24);
    forgetJournals();
    let s = await createStudioServer({ folder: root });
    const log = path.join(s.ctx.project!.stateDir, 'actions.jsonl');
    await s.close();
    await fs.appendFile(log, '{"type":"begin","id":"cut-sh'); // a crash while this line was written
    forgetJournals();
    s = await createStudioServer({ folder: root });
    let id: string;
    try {
      const r = await post(s.url, s.token, '/api/images/move', { images: ['a/img_0000.jpg'], to: 'b' });
      expect(r.status).toBe(200);
      id = r.body.action.id;
    } finally {
      await s.close();
    }
    forgetJournals();
    s = await createStudioServer({ folder: root });
    try {
      expect((await post(s.url, s.token, '/api/actions/undo', { id })).status).toBe(200);
      expect(await names(path.join(root, 'a'))).toContain('img_0000.jpg');
    } finally {
      await s.close();
    }
  });
});

describe('tlearn studio (the command)', () => {
  it('prints its address with a token, answers only with it, and stops cleanly on SIGTERM; a missing folder is a clear error', async () => {
    const root = await makeProject(tmpDir('tlearn-studio-cli-'), { a: 2, b: 2 }, 24);
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'tlearn.js'), 'studio', root, '--port', '0'], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    const line = await new Promise<string>((resolve, reject) => {
      readline.createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', (c) => reject(new Error(`exited ${c}: ${err}`)));
    });
    expect(line).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{20,}$/);
    const u = new URL(line);
    expect((await fetch(`${u.origin}/api/classes`)).status).toBe(401);
    const ok = await fetch(`${u.origin}/api/classes`, { headers: { authorization: `Bearer ${u.searchParams.get('token')}` } });
    expect((await ok.json()).classes.map((c: any) => c.name)).toEqual(['a', 'b']);
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(0);
    expect(err).toMatch(/open this address/);

    const missing = spawn(process.execPath, [path.join(ROOT, 'bin', 'tlearn.js'), 'studio', path.join(root, 'nope'), '--port', '0'], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let merr = '';
    missing.stderr!.on('data', (d) => (merr += d));
    expect(await new Promise((r) => missing.once('exit', r))).toBe(1);
    expect(merr).toMatch(/does not exist/);
  });
});
