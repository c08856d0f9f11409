/**
 * tlearn studio's safety and file actions over HTTP: the token on every route, no cross-site requests, no DNS
 * rebinding (Host), names that would leave the project refused with 400 and nothing touched, uploads sniffed, moves
 * that never overwrite, and undo restoring byte-identical files.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStudioServer, type StudioServer } from '../src/studio/index.js';
import { allowedHosts } from '../src/studio/auth.js';
import { loadImageFolder } from '../src/data/discover.js';
import { tmpDir } from './helpers.js';
import { get, makeProject, post, rawRequest, sha, snapshot } from './studio-helpers.js';

let s: StudioServer;
let root: string;
let outside: string;
let parent: string;

beforeAll(async () => {
  parent = tmpDir('tlearn-studio-safety-');
  root = await makeProject(path.join(parent, 'project'), { cats: 6, dogs: 4 });
  outside = path.join(parent, 'outside');
  await makeProject(outside, { secret: 2 }, 40, 7);
  await fs.symlink(path.join(outside, 'secret'), path.join(root, 'linked'));
  await fs.symlink(path.join(outside, 'secret', 'img_0000.jpg'), path.join(root, 'cats', 'link-out.jpg'));
  s = await createStudioServer({ folder: root });
});

afterAll(async () => {
  await s?.close();
});

describe('access: token, cookie, Host, Origin', () => {
  it('answers 401 on every route without the token (and with a wrong one)', async () => {
    const routes = s.routes.filter((r) => r.method !== 'OPTIONS');
    expect(routes.length).toBeGreaterThan(15);
    const seen: string[] = [];
    for (const r of routes) {
      const url = `${s.url}${r.url.replace(/:(\w+)/g, 'x')}`;
      for (const headers of [{}, { authorization: 'Bearer wrong' }, { cookie: `tlearn-studio-${new URL(s.url).port}=wrong` }] as Array<Record<string, string>>) {
        const res = await fetch(url, { method: r.method, headers: { ...headers, origin: s.url, ...(r.method === 'GET' ? {} : { 'content-type': 'application/json' }) }, body: r.method === 'GET' ? undefined : '{}' });
        expect(res.status, `${r.method} ${r.url} ${JSON.stringify(headers)}`).toBe(401);
      }
      seen.push(`${r.method} ${r.url}`);
    }
    // unknown routes too, and the page says where the link is
    expect((await fetch(`${s.url}/nothing-here`)).status).toBe(401);
    const page = await fetch(`${s.url}/`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(401);
    expect(await page.text()).toMatch(/\?token=/);
    expect(seen).toContain('POST /api/images/move');
    expect(seen).toContain('GET /api/thumb');
  });

  it('exchanges the token in the link for an HttpOnly SameSite=Strict cookie and drops it from the address', async () => {
    const r = await fetch(`${s.url}/?token=${s.token}`, { redirect: 'manual' });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/');
    const cookie = r.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const jar = cookie.split(';')[0]!;
    const page = await fetch(`${s.url}/`, { headers: { cookie: jar } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect((await fetch(`${s.url}/api/classes`, { headers: { cookie: jar } })).status).toBe(200);
  });

  it('refuses cross-site requests that change things, even with the cookie', async () => {
    const jar = `tlearn-studio-${new URL(s.url).port}=${s.token}`;
    const before = await snapshot(parent);
    const tries: Array<Record<string, string>> = [
      { origin: 'http://evil.example' },
      { origin: 'null' },
      { origin: s.url, 'sec-fetch-site': 'cross-site' },
      {}, // no Origin at all with only the cookie
    ];
    for (const h of tries) {
      const r = await fetch(`${s.url}/api/classes/add`, { method: 'POST', headers: { cookie: jar, 'content-type': 'application/json', ...h }, body: JSON.stringify({ name: 'evil' }) });
      expect(r.status, JSON.stringify(h)).toBe(403);
    }
    // a simple form post (text/plain) from another site
    const form = await fetch(`${s.url}/api/classes/delete`, { method: 'POST', headers: { cookie: jar, 'content-type': 'text/plain', origin: 'http://evil.example' }, body: '{"name":"cats"}' });
    expect(form.status).toBe(403);
    expect(await snapshot(parent)).toEqual(before);
  });

  it('refuses a Host that is not the studio address (DNS rebinding), even with the token', async () => {
    const port = new URL(s.url).port;
    for (const host of [`evil.example:${port}`, 'localhost', `127.0.0.1:1`, `attacker.127.0.0.1.nip.io:${port}`]) {
      const r = await rawRequest(`${s.url}/api/classes`, { headers: { host, authorization: `Bearer ${s.token}` } });
      expect(r.status, host).toBe(403);
      expect(r.body).toMatch(/answers as/);
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
      const r = await rawRequest(`${s.url}/api/classes`, { headers: { host, authorization: `Bearer ${s.token}` } });
      expect(r.status, host).toBe(200);
    }
  });
});

describe('which Host names the studio answers to', () => {
  it('is the bound address and port (localhost too on loopback; every local address on a wildcard bind), never another name', () => {
    expect([...allowedHosts('127.0.0.1', 8000)].sort()).toEqual(['127.0.0.1:8000', '[::1]:8000', 'localhost:8000']);
    expect([...allowedHosts('::1', 8000)]).toContain('[::1]:8000');
    const wild = allowedHosts('0.0.0.0', 9);
    expect(wild.has('127.0.0.1:9')).toBe(true);
    expect(wild.has('localhost:9')).toBe(true);
    expect([...wild].some((h) => /[a-z]{3,}\./.test(h))).toBe(false);
    expect(allowedHosts('192.168.1.5', 80)).toEqual(new Set(['192.168.1.5:80']));
  });
});

describe('names from the page stay inside the project', () => {
  it('refuses class names with .., separators, absolute paths, NUL, control characters or a leading dot with 400, touching nothing', async () => {
    const before = await snapshot(parent);
    const bad = ['../escape', '..', '.', '/tmp/abs', 'a/b', 'a\\b', 'nul\0byte', 'tab\there', '.hidden', '', '  ', 'x'.repeat(300)];
    for (const name of bad) {
      const r = await post(s.url, s.token, '/api/classes/add', { name });
      expect(r.status, JSON.stringify(name)).toBe(400);
      expect(r.body.detail).toBeTruthy();
    }
    for (const to of ['../escape', '/tmp/abs', 'a/b']) expect((await post(s.url, s.token, '/api/classes/rename', { from: 'cats', to })).status, to).toBe(400);
    expect((await post(s.url, s.token, '/api/classes/rename', { from: '../outside', to: 'x' })).status).toBe(400);
    expect((await post(s.url, s.token, '/api/classes/merge', { from: 'cats', into: '../outside/secret' })).status).toBe(400);
    expect((await post(s.url, s.token, '/api/classes/delete', { name: '../outside' })).status).toBe(400);
    expect((await post(s.url, s.token, '/api/classes/delete', { name: '/' })).status).toBe(400);
    expect(await snapshot(parent)).toEqual(before);
  });

  it('refuses image references that leave the project, or links that point outside, with 400', async () => {
    const before = await snapshot(parent);
    const refs = ['../outside/secret/img_0000.jpg', '/etc/passwd', 'cats/../../outside/secret/img_0000.jpg', 'cats/../dogs/img_0000.jpg', 'cats', 'cats/sub/x.jpg', 'linked/img_0000.jpg', 'cats/link-out.jpg', 'cats/img\u00000000.jpg'];
    for (const ref of refs) {
      expect((await post(s.url, s.token, '/api/images/remove', { images: [ref] })).status, ref).toBe(400);
      expect((await post(s.url, s.token, '/api/images/move', { images: [ref], to: 'dogs' })).status, ref).toBe(400);
      expect((await get(s.url, s.token, `/api/thumb?i=${encodeURIComponent(ref)}`)).status, ref).toBe(400);
      expect((await get(s.url, s.token, `/api/image?i=${encodeURIComponent(ref)}`)).status, ref).toBe(400);
    }
    // a good image together with a bad one: the whole action is refused
    expect((await post(s.url, s.token, '/api/images/remove', { images: ['cats/img_0000.jpg', '../outside/secret/img_0001.jpg'] })).status).toBe(400);
    expect((await post(s.url, s.token, '/api/images/move', { images: ['cats/img_0000.jpg'], to: '../outside' })).status).toBe(400);
    expect((await post(s.url, s.token, '/api/images/move', { images: ['cats/img_0000.jpg'], to: 'linked' })).status).toBe(400);
    expect((await get(s.url, s.token, '/api/images?class=linked')).status).toBe(400);
    expect((await get(s.url, s.token, '/api/images?class=..')).status).toBe(400);
    const up = new FormData();
    up.append('file', new Blob([await fs.readFile(path.join(root, 'cats', 'img_0000.jpg'))], { type: 'image/jpeg' }), 'x.jpg');
    const r = await fetch(`${s.url}/api/images/add?class=${encodeURIComponent('../outside/secret')}`, { method: 'POST', headers: { authorization: `Bearer ${s.token}`, origin: s.url }, body: up });
    expect(r.status).toBe(400);
    expect(await snapshot(parent)).toEqual(before);
    // the link leading outside is not listed as a class
    const classes = (await get(s.url, s.token, '/api/classes')).body.classes.map((c: any) => c.name);
    expect(classes).toEqual(['cats', 'dogs']);
  });
});

describe('file actions, journal and undo', () => {
  it('adds uploaded images (content sniffed, names made safe), refuses what is not an image, and undoes', async () => {
    const jpg = await fs.readFile(path.join(root, 'dogs', 'img_0000.jpg'));
    const form = new FormData();
    form.append('file', new Blob([jpg]), '../../sneaky.jpg');
    form.append('file', new Blob([jpg]), 'no-extension');
    form.append('file', new Blob(['<html>hi</html>']), 'page.jpg');
    form.append('file', new Blob([jpg]), 'img_0000.jpg'); // clashes with an existing file
    const r = await fetch(`${s.url}/api/images/add?class=cats`, { method: 'POST', headers: { authorization: `Bearer ${s.token}`, origin: s.url }, body: form });
    const body = await r.json();
    expect(r.status).toBe(200);
    expect(body.added.sort()).toEqual(['cats/img_0000-2.jpg', 'cats/no-extension.jpg', 'cats/sneaky.jpg']);
    expect(body.refused).toEqual([{ name: 'page.jpg', reason: expect.stringMatching(/not an image/) }]);
    expect(sha(await fs.readFile(path.join(root, 'cats', 'sneaky.jpg')))).toBe(sha(jpg));
    const before = await fs.readFile(path.join(root, 'cats', 'img_0000.jpg'));
    expect(sha(before)).not.toBe(sha(jpg)); // not overwritten
    const undo = await post(s.url, s.token, '/api/actions/undo', { id: body.action.id });
    expect(undo.status).toBe(200);
    // undoing an upload puts the images in the trash (nothing is deleted)
    const trashed = await fs.readdir(path.join(root, '.tlearn-trash', undo.body.action.id, 'cats'));
    expect(trashed.sort()).toEqual(['img_0000-2.jpg', 'no-extension.jpg', 'sneaky.jpg']);
    expect(await fs.readdir(path.join(root, 'cats'))).not.toContain('sneaky.jpg');
    expect((await post(s.url, s.token, '/api/actions/undo', { id: body.action.id })).status).toBe(409);
  });

  it('moves images without overwriting (a clash gets a new name) and undo restores them byte-identical', async () => {
    const before = await snapshot(root);
    const r = await post(s.url, s.token, '/api/images/move', { images: ['cats/img_0001.jpg', 'cats/img_0002.jpg'], to: 'dogs' });
    expect(r.status).toBe(200);
    const dogs = await fs.readdir(path.join(root, 'dogs'));
    expect(dogs).toContain('img_0001-2.jpg'); // dogs/img_0001.jpg existed already
    expect(dogs).toContain('img_0002-2.jpg');
    expect(sha(await fs.readFile(path.join(root, 'dogs', 'img_0001-2.jpg')))).toBe(before.get('cats/img_0001.jpg'));
    expect(sha(await fs.readFile(path.join(root, 'dogs', 'img_0002.jpg')))).toBe(before.get('dogs/img_0002.jpg'));
    expect((await post(s.url, s.token, '/api/actions/undo', { id: r.body.action.id })).status).toBe(200);
    const after = await snapshot(root);
    for (const [k, v] of before) if (!k.startsWith('.tlearn-trash')) expect(after.get(k), k).toBe(v);
  });

  it('renames, merges and deletes classes (deleted things go to the trash), each undoable back to the same bytes', async () => {
    const before = await snapshot(root);
    const strip = (m: Map<string, string>) => new Map([...m].filter(([k]) => !k.startsWith('.tlearn-trash')));
    const ids: string[] = [];
    const add = await post(s.url, s.token, '/api/classes/add', { name: 'birds' });
    expect(add.status).toBe(200);
    ids.push(add.body.action.id);
    expect((await post(s.url, s.token, '/api/classes/add', { name: 'birds' })).status).toBe(409);
    const ren = await post(s.url, s.token, '/api/classes/rename', { from: 'dogs', to: 'hounds' });
    expect(ren.status).toBe(200);
    ids.push(ren.body.action.id);
    expect((await post(s.url, s.token, '/api/classes/rename', { from: 'hounds', to: 'cats' })).body.detail).toMatch(/Merge/);
    const merge = await post(s.url, s.token, '/api/classes/merge', { from: 'hounds', into: 'cats' });
    expect(merge.status).toBe(200);
    ids.push(merge.body.action.id);
    expect((await fs.readdir(root)).filter((n) => !n.startsWith('.')).sort()).toEqual(['birds', 'cats', 'linked']);
    const del = await post(s.url, s.token, '/api/classes/delete', { name: 'cats' });
    expect(del.status).toBe(200);
    ids.push(del.body.action.id);
    expect(await fs.readdir(path.join(root, '.tlearn-trash', del.body.action.id))).toEqual(['cats']);
    // undo in reverse order
    for (const id of ids.reverse()) {
      const u = await post(s.url, s.token, '/api/actions/undo', { id });
      expect(u.status, id).toBe(200);
    }
    expect(strip(await snapshot(root))).toEqual(strip(before));
    const actions = (await get(s.url, s.token, '/api/actions')).body.actions;
    expect(actions.filter((a: any) => a.undoOf).length).toBeGreaterThanOrEqual(4);
  });

  it('does not undo when a file is in the way, and says why', async () => {
    const r = await post(s.url, s.token, '/api/images/remove', { images: ['cats/img_0003.jpg'] });
    expect(r.status).toBe(200);
    await fs.writeFile(path.join(root, 'cats', 'img_0003.jpg'), 'new file');
    const u = await post(s.url, s.token, '/api/actions/undo', { id: r.body.action.id });
    expect(u.status).toBe(409);
    expect(u.body.detail).toMatch(/never overwrites/);
    await fs.rm(path.join(root, 'cats', 'img_0003.jpg'));
    expect((await post(s.url, s.token, '/api/actions/undo', { id: r.body.action.id })).status).toBe(200);
  });

  it('lists check findings with images named class/file and leaves the trash out', async () => {
    await fs.copyFile(path.join(root, 'cats', 'img_0004.jpg'), path.join(root, 'dogs', 'copy.jpg'));
    const r = await post(s.url, s.token, '/api/check', {});
    expect(r.status).toBe(200);
    expect(r.body.conflicts).toEqual([{ images: ['cats/img_0004.jpg', 'dogs/copy.jpg'], classes: ['cats', 'dogs'] }]);
    expect(r.body.small.length).toBeGreaterThan(0);
    expect(r.body.skipped.some((x: any) => x.image.includes('.tlearn-trash'))).toBe(false);
    await fs.rm(path.join(root, 'dogs', 'copy.jpg'));
  });

  it('serves thumbnails (cached by content) and the project list', async () => {
    const t = await fetch(`${s.url}/api/thumb?i=cats/img_0000.jpg`, { headers: { authorization: `Bearer ${s.token}` } });
    expect(t.status).toBe(200);
    expect(t.headers.get('content-type')).toBe('image/webp');
    expect((await t.arrayBuffer()).byteLength).toBeGreaterThan(50);
    const etag = t.headers.get('etag')!;
    expect(etag).toBe(`"${sha(await fs.readFile(path.join(root, 'cats', 'img_0000.jpg')))}"`);
    const again = await fetch(`${s.url}/api/thumb?i=cats/img_0000.jpg`, { headers: { authorization: `Bearer ${s.token}`, 'if-none-match': etag } });
    expect(again.status).toBe(304);
    // the thumbnail is stored by content: a second copy of the image under another name reuses it
    const stored = await fs.readdir(path.join(process.env.TLEARN_HOME!, 'studio', 'thumbs', etag.slice(1, 3)));
    expect(stored).toContain(`${etag.slice(1, -1)}.webp`);
    const p = (await get(s.url, s.token, '/api/projects')).body;
    expect(p.current.root).toBe(await fs.realpath(root));
    expect(p.recent.map((x: any) => x.root)).toContain(await fs.realpath(root));
    expect((await get(s.url, s.token, '/api/try/model')).status).toBe(409); // no run yet: says train first
  });

  it('creates a new empty project folder, refuses a folder that already has files, and opens existing ones', async () => {
    const where = tmpDir('tlearn-studio-new-');
    const made = await post(s.url, s.token, '/api/projects/create', { name: 'plants', parent: where });
    expect(made.status).toBe(200);
    expect(made.body.current.root).toBe(path.join(await fs.realpath(where), 'plants'));
    expect(await fs.readdir(path.join(where, 'plants'))).toEqual([]);
    expect((await get(s.url, s.token, '/api/classes')).body.classes).toEqual([]);
    const again = await post(s.url, s.token, '/api/projects/create', { name: 'project', parent: parent });
    expect(again.status).toBe(409);
    expect(again.body.detail).toMatch(/open it as a project instead/);
    expect((await post(s.url, s.token, '/api/projects/create', { name: '../up', parent: where })).status).toBe(400);
    expect((await post(s.url, s.token, '/api/projects/create', { name: 'x', parent: 'relative/path' })).status).toBe(400);
    expect((await post(s.url, s.token, '/api/projects/open', { folder: path.join(where, 'missing') })).status).toBe(404);
    const back = await post(s.url, s.token, '/api/projects/open', { folder: root });
    expect(back.status).toBe(200);
    expect((await get(s.url, s.token, '/api/classes')).body.classes.map((c: any) => c.name)).toEqual(['cats', 'dogs']);
  });

  it('keeps the trash out of training: the dataset loader skips .tlearn-trash', async () => {
    const r = await post(s.url, s.token, '/api/images/remove', { images: ['dogs/img_0000.jpg'] });
    expect(r.status).toBe(200);
    const ds = await loadImageFolder(root);
    expect(ds.classes).not.toContain('.tlearn-trash');
    expect(ds.images.some((im) => im.path.includes('.tlearn-trash'))).toBe(false);
    expect(ds.skipped.some((x) => x.path.endsWith('.tlearn-trash') && /hidden/.test(x.reason))).toBe(true);
    expect((await post(s.url, s.token, '/api/actions/undo', { id: r.body.action.id })).status).toBe(200);
  });
});
