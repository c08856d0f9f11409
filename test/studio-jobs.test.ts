/**
 * The studio's training jobs (src/studio/jobs.ts) and their HTTP API (train-routes.ts), on tiny generated data and
 * a tiny backbone: a run from start to its results, its events replayed over Server-Sent Events (whole, or from
 * a Last-Event-ID) then live, one training at a time, bad settings refused with what to do, Cancel, and a studio
 * killed (SIGKILL) during training: the project is intact, the run shows as stopped with Resume, Resume completes.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { JobManager, type StoredEvent } from '../src/studio/jobs.js';
import type { TrainingEvent } from '../src/engine/events.js';
import { fixedProject, trainRoutes } from '../src/studio/train-routes.js';
import { installErrorHandlers } from '../src/serve/errors.js';
import { silentLogger } from '../src/util/log.js';
import { estimateTraining } from '../src/studio/estimate.js';
import { parseCsv } from '../src/studio/review-data.js';
import { makeDataset, makeTinyBackbone, ROOT, tmpDir } from './helpers.js';

let project: string;
let backbone: string;

beforeAll(async () => {
  project = await makeDataset(path.join(tmpDir(), 'my photos'), { classes: { red: 10, green: 10, blue: 10 }, seed: 4 });
  backbone = await makeTinyBackbone(tmpDir());
});

interface Sse {
  events: StoredEvent[];
  statuses: any[];
  ended: boolean;
}

/** Reads a Server-Sent Events stream until it ends, or until `until` says so (then aborts it). */
async function readSse(url: string, o: { headers?: Record<string, string>; until?: (s: Sse) => boolean } = {}): Promise<Sse> {
  const ac = new AbortController();
  const res = await fetch(url, { headers: o.headers, signal: ac.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const s: Sse = { events: [], statuses: [], ended: false };
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for await (const chunk of res.body as any as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const type = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (data === undefined) continue;
        if (type === 'message') s.events.push(JSON.parse(data));
        else if (type === 'status') s.statuses.push(JSON.parse(data));
        else if (type === 'end') s.ended = true;
      }
      if (o.until?.(s)) {
        ac.abort();
        break;
      }
    }
  } catch (e: any) {
    if (e.name !== 'AbortError') throw e;
  }
  return s;
}

async function serve(jobs: JobManager, stateDir: string, projectDir = project): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify();
  installErrorHandlers(app, 1e6, silentLogger);
  await trainRoutes(app, fixedProject(jobs, projectDir, stateDir, [backbone]));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url };
}

/** `tlearn studio <project> --backbone <tiny>` in a child process; resolves once it prints its address. */
async function startStudio() {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/tlearn.js'), 'studio', project, '--port', '0', '--backbone', backbone, '-q'], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((r) => child.on('exit', r));
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const open = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /(http:\/\/\S+\?token=\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', () => reject(new Error(`the studio exited: ${out} ${err}`)));
  });
  const u = new URL(open);
  const auth = { authorization: `Bearer ${u.searchParams.get('token')}` };
  const url = u.origin;
  return { child, exited, url, auth, post: (p: string, body?: unknown) => fetch(`${url}${p}`, { method: 'POST', headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) }) };
}

const post = (url: string, body?: unknown) => fetch(url, { method: 'POST', headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

/** sha256 of every file under `dir`, by relative path. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string) => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out[path.relative(dir, p)] = createHash('sha256').update(await fs.readFile(p)).digest('hex');
    }
  };
  await walk(dir);
  return out;
}

describe('studio training jobs', () => {
  it('a transfer run: events in order, runs.json, the events file replays the same events, the review data', async () => {
    const stateDir = tmpDir('studio-state-');
    const jobs = await JobManager.open({ projectDir: project, stateDir, backbones: [backbone], threads: 1 });
    const seen: StoredEvent[] = [];
    const run = await jobs.start({ mode: 'transfer', backbone, epochs: 5 });
    expect(run.status).toBe('running');
    expect(run.outDir).toBe(path.join(stateDir, 'runs', run.id));
    await jobs.subscribe(run.id, -1, (e) => 'seq' in e && seen.push(e));
    await jobs.idle();
    const done = jobs.get(run.id);
    expect(done.status).toBe('done');
    expect(done.testAccuracy).toBeGreaterThanOrEqual(0);
    expect(done.epochs).toBe(5);
    const types = seen.map((e) => e.event.type);
    expect(types.at(-1)).toBe('done');
    expect(types).toContain('extract');
    const epochs = seen.filter((e) => e.event.type === 'epoch').map((e: any) => e.event.log.epoch);
    expect(epochs).toEqual([1, 2, 3, 4, 5]);
    expect(seen.map((e) => e.seq)).toEqual(seen.map((_e, i) => i));
    expect(seen[types.indexOf('run-start')]!.event).toMatchObject({ mode: 'transfer', classes: ['blue', 'green', 'red'], resumed: false });
    const counts = (seen[types.indexOf('run-start')]!.event as any).counts;
    expect(counts.train + counts.val + counts.test).toBe(30);
    // extraction of train+val, then of test: each ends with all its images done, 30 in all
    const extract = seen.filter((e) => e.event.type === 'extract').map((e) => e.event as Extract<TrainingEvent, { type: 'extract' }>);
    const lastOf = new Map(extract.map((e) => [e.name, e]));
    expect([...lastOf.keys()]).toEqual(['features train+val', 'features test']);
    for (const e of lastOf.values()) expect(e.done).toBe(e.total);
    expect([...lastOf.values()].reduce((a, e) => a + e.total, 0)).toBe(30);
    expect(types.filter((t) => t === 'evaluation')).toHaveLength(2);
    // runs.json on disk, and a new manager (a restarted studio) reads the same events from the events file
    const list = JSON.parse(await fs.readFile(path.join(stateDir, 'runs.json'), 'utf8'));
    expect(list).toEqual([expect.objectContaining({ id: run.id, outDir: run.outDir, mode: 'transfer', status: 'done', testAccuracy: done.testAccuracy, startedAt: run.startedAt })]);
    const again = await JobManager.open({ projectDir: project, stateDir, backbones: [backbone] });
    expect(await again.events(run.id)).toEqual(seen);
    expect(again.get(run.id).status).toBe('done');
    expect(again.resumable(again.get(run.id))).toBe(false);
    // the review data: paths inside the project, the confusion matrix adds up to the test images
    const { app, url } = await serve(again, stateDir);
    try {
      const r = await (await fetch(`${url}/api/runs/${run.id}/review`)).json();
      expect(r.classes).toEqual(['blue', 'green', 'red']);
      expect(r.predictions.length).toBe(r.test.images);
      for (const p of r.predictions) {
        expect(p.path).toMatch(/^(red|green|blue)\/img_\d{3}\.jpg$/);
        expect(p.exists).toBe(true);
      }
      expect(r.test.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(r.test.images);
      expect(r.val.images).toBeGreaterThan(0);
      for (let k = 1; k < r.topLoss.length; k++) expect(r.predictions[r.topLoss[k - 1]].loss).toBeGreaterThanOrEqual(r.predictions[r.topLoss[k]].loss);
      const unfinished = await fetch(`${url}/api/runs/nope/review`);
      expect(unfinished.status).toBe(404);
      // possible label issues: a photo of red put in green is found; kept as labelled, it is not shown again
      const wrong = path.join(project, 'green', 'from-red.jpg');
      await fs.copyFile(path.join(project, 'red', 'img_000.jpg'), wrong);
      try {
        const li = await (await fetch(`${url}/api/runs/${run.id}/label-issues?fresh=1`)).json();
        expect(li.checked).toBe(31);
        const found = li.issues.find((i: any) => i.path === 'green/from-red.jpg');
        expect(found).toMatchObject({ given: 'green' });
        expect(found.kind === 'duplicate' || found.suggested === 'red').toBe(true);
        for (const i of li.issues) expect(i.path).toMatch(/^(red|green|blue)\//);
        expect(existsSync(path.join(run.outDir, 'studio-label-issues.json'))).toBe(true);
        expect((await post(`${url}/api/review/keep`, { images: ['green/from-red.jpg'] })).status).toBe(200);
        const again = await (await fetch(`${url}/api/runs/${run.id}/label-issues`)).json();
        expect(again.issues.some((i: any) => i.path === 'green/from-red.jpg')).toBe(false);
        expect(again.hidden).toBeGreaterThanOrEqual(1);
        expect((await post(`${url}/api/review/keep`, { images: 'x' })).status).toBe(400);
      } finally {
        await fs.rm(wrong);
      }
    } finally {
      await app.close();
    }
  });

  it('over HTTP: Server-Sent Events replay the past then go live; Last-Event-ID gets only what was missed; one training at a time; bad settings say what to do', async () => {
    const stateDir = tmpDir('studio-state-');
    const jobs = await JobManager.open({ projectDir: project, stateDir, backbones: [backbone], threads: 1 });
    const { app, url } = await serve(jobs, stateDir);
    try {
      const opts = await (await fetch(`${url}/api/train/options`)).json();
      expect(opts.defaults).toMatchObject({ mode: 'transfer', backbone, epochs: { transfer: 40, finetune: 10 } });
      expect(opts.images).toBe(30);
      expect(opts.backbones[0]).toMatchObject({ id: backbone, installed: true });
      const est = await (await fetch(`${url}/api/train/estimate?mode=transfer&backbone=${encodeURIComponent(backbone)}`)).json();
      expect(est.text).toMatch(/^About \d+ s on a 2-core computer \(an estimate/);
      for (const [body, re] of [
        [{ mode: 'scratch', backbone }, /mode must be 'transfer' or 'finetune'/],
        [{ mode: 'transfer', backbone: '/etc' }, /is not one of the offered models; choose one from the list/],
        [{ mode: 'transfer', backbone, epochs: 0 }, /epochs must be a whole number from 1 to 1000/],
        [{ mode: 'transfer', backbone, augment: true }, /apply to fine-tuning only/],
      ] as const) {
        const r = await post(`${url}/api/runs`, body);
        expect(r.status).toBe(400);
        expect((await r.json()).detail).toMatch(re);
      }
      expect((await (await fetch(`${url}/api/train/runs`)).json()).runs).toEqual([]);
      const started = await post(`${url}/api/runs`, { mode: 'transfer', backbone, epochs: 300 });
      expect(started.status).toBe(202);
      const { run } = await started.json();
      const busy = await post(`${url}/api/runs`, { mode: 'transfer', backbone });
      expect(busy.status).toBe(409);
      expect((await busy.json()).detail).toMatch(/a training is already running in this project: wait for it to finish, or cancel it first/);
      // a page that leaves after the first epoch, and one that comes back with the last id it saw
      const first = await readSse(`${url}/api/runs/${run.id}/events`, { until: (s) => s.events.some((e) => e.event.type === 'epoch') });
      expect(first.statuses[0]).toMatchObject({ id: run.id, status: 'running' });
      const lastSeen = first.events.at(-1)!.seq;
      const rest = await readSse(`${url}/api/runs/${run.id}/events`, { headers: { 'last-event-id': String(lastSeen) } });
      expect(rest.ended).toBe(true);
      expect(rest.events[0]!.seq).toBe(lastSeen + 1);
      expect(rest.events.at(-1)!.event.type).toBe('done');
      expect(rest.statuses.at(-1)).toMatchObject({ status: 'done', resumable: false });
      const all = [...first.events, ...rest.events];
      expect(all.map((e) => e.seq)).toEqual(all.map((_e, i) => i));
      expect(all.filter((e) => e.event.type === 'epoch')).toHaveLength(300);
      // after the end: the whole story again, then 'end' at once
      const replay = await readSse(`${url}/api/runs/${run.id}/events`);
      expect(replay.events).toEqual(all);
      expect(replay.ended).toBe(true);
      expect((await fetch(`${url}/api/runs/x/events`)).status).toBe(404);
      // a project with one class cannot train, and says how to fix it
      const lone = await makeDataset(tmpDir(), { classes: { red: 5 } });
      const jobs2 = await JobManager.open({ projectDir: lone, stateDir: tmpDir(), backbones: [backbone] });
      await expect(jobs2.start({ mode: 'transfer', backbone })).rejects.toThrow(/training needs at least two classes with photos; this project has one \('red'\)\. Add a class and its photos on the Data page/);
    } finally {
      await app.close();
    }
  });

  it('Cancel stops the run at the next safe point: cancelled, then Resume finishes it', async () => {
    const stateDir = tmpDir('studio-state-');
    const jobs = await JobManager.open({ projectDir: project, stateDir, backbones: [backbone], threads: 1 });
    const { app, url } = await serve(jobs, stateDir);
    try {
      // cancelled once the head is learning: it stops between two epochs
      const { run } = await (await post(`${url}/api/runs`, { mode: 'transfer', backbone, epochs: 1000 })).json();
      await readSse(`${url}/api/runs/${run.id}/events`, { until: (s) => s.events.some((e) => e.event.type === 'epoch') });
      const c = await post(`${url}/api/runs/${run.id}/cancel`);
      expect(c.status).toBe(200);
      const end = await readSse(`${url}/api/runs/${run.id}/events`);
      expect(end.events.at(-1)!.event.type).toBe('cancelled');
      const epochs = end.events.filter((e) => e.event.type === 'epoch').length;
      expect(epochs).toBeGreaterThan(0);
      expect(epochs).toBeLessThan(1000);
      expect(end.statuses.at(-1)).toMatchObject({ status: 'cancelled', resumable: true });
      expect(existsSync(path.join(run.outDir, 'metrics.json'))).toBe(false);
      expect((await post(`${url}/api/runs/${run.id}/cancel`)).status).toBe(409);
      const r = await post(`${url}/api/runs/${run.id}/resume`);
      expect(r.status).toBe(202);
      await jobs.idle();
      expect(jobs.get(run.id)).toMatchObject({ status: 'done', resumedAt: [expect.any(String)] });
      expect(existsSync(path.join(run.outDir, 'metrics.json'))).toBe(true);
      const again = await post(`${url}/api/runs/${run.id}/resume`);
      expect(again.status).toBe(409);
      expect((await again.json()).detail).toMatch(/this run has finished; there is nothing to resume/);
    } finally {
      await app.close();
    }
  });

  it('`tlearn studio` killed (SIGKILL) while fine-tuning, then started again: the project is intact, the run is stopped with Resume, and Resume completes', async () => {
    const before = await snapshot(project);
    const first = await startStudio();
    let runDir: string;
    try {
      const r = await first.post('/api/runs', { mode: 'finetune', backbone, epochs: 4 });
      expect(r.status).toBe(202);
      const { run } = await r.json();
      runDir = run.outDir;
      // killed once the first fine-tuning epoch's checkpoint is written
      await readSse(`${first.url}/api/runs/${run.id}/events`, { headers: first.auth, until: (s) => s.events.some((e) => e.event.type === 'checkpoint' && e.event.epoch === 1 && e.event.batch === undefined) });
      first.child.kill('SIGKILL');
      await first.exited;
    } finally {
      first.child.kill('SIGKILL');
    }
    expect(await snapshot(project)).toEqual(before);
    const stateDir = path.dirname(path.dirname(runDir!));
    expect(JSON.parse(await fs.readFile(path.join(stateDir, 'runs.json'), 'utf8'))[0]).toMatchObject({ status: 'running' });
    const second = await startStudio();
    try {
      const { runs } = await (await fetch(`${second.url}/api/train/runs`, { headers: second.auth })).json();
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({ status: 'stopped', resumable: true, outDir: runDir! });
      expect(JSON.parse(await fs.readFile(path.join(stateDir, 'runs.json'), 'utf8'))[0].status).toBe('stopped');
      const id = runs[0].id;
      const r = await second.post(`/api/runs/${id}/resume`);
      expect(r.status).toBe(202);
      const s = await readSse(`${second.url}/api/runs/${id}/events`, { headers: second.auth });
      expect(s.ended).toBe(true);
      expect(s.events.some((e) => e.event.type === 'epoch')).toBe(true);
      expect(s.events.at(-1)!.event.type).toBe('done');
      expect(s.events.map((e) => e.seq)).toEqual(s.events.map((_e, i) => i));
      expect(s.events.some((e) => e.event.type === 'log' && /resuming from the checkpoint at the end of epoch 1/.test((e.event as any).message))).toBe(true);
      expect(s.statuses.at(-1)).toMatchObject({ status: 'done', resumable: false });
      expect(existsSync(path.join(runDir!, 'metrics.json'))).toBe(true);
      expect(await snapshot(project)).toEqual(before);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });

  it('the estimate grows with images, epochs and slower backbones, and says it is an estimate', () => {
    const a = estimateTraining({ mode: 'transfer', backbone: 'mobilenet_v2_0.35', images: 1000 });
    const b = estimateTraining({ mode: 'transfer', backbone: 'mobilenet_v2_0.35', images: 2000 });
    const c = estimateTraining({ mode: 'transfer', backbone: 'resnet50', images: 1000 });
    const d = estimateTraining({ mode: 'finetune', backbone: 'mobilenet_v2_0.35', images: 1000 });
    expect(b.seconds).toBeGreaterThan(a.seconds);
    expect(c.seconds).toBeGreaterThan(a.seconds * 5);
    expect(d.seconds).toBeGreaterThan(a.seconds * 5);
    // Caltech-97 (6,209 images), cold: ~21 s extraction + 12 s of head epochs + start-up, as BENCHMARKS.md measured ~29-50 s
    const caltech = estimateTraining({ mode: 'transfer', backbone: 'mobilenet_v2_0.35', images: 6209 });
    expect(caltech.seconds).toBeGreaterThan(25);
    expect(caltech.seconds).toBeLessThan(60);
    expect(a.text).toMatch(/an estimate/);
  });

  it('a studio closed (Ctrl-C) during training stops it at a safe point as "stopped", resumable', async () => {
    const stateDir = tmpDir('studio-state-');
    const jobs = await JobManager.open({ projectDir: project, stateDir, backbones: [backbone], threads: 1 });
    const run = await jobs.start({ mode: 'transfer', backbone, epochs: 1000 });
    await new Promise<void>((resolve) => void jobs.subscribe(run.id, -1, (e) => 'seq' in e && e.event.type === 'epoch' && resolve()));
    await jobs.close();
    expect(jobs.get(run.id)).toMatchObject({ status: 'stopped' });
    expect(jobs.resumable(jobs.get(run.id))).toBe(true);
    const events = await jobs.events(run.id);
    expect(events.at(-1)!.event.type).toBe('cancelled');
    expect(events.filter((e) => e.event.type === 'epoch').length).toBeLessThan(1000);
    expect(JSON.parse(await fs.readFile(path.join(stateDir, 'runs.json'), 'utf8'))[0].status).toBe('stopped');
  });

  it('offers the installed zoo backbones with their size and speed, the default even when not installed yet, and local folders first', async () => {
    const { offeredBackbones } = await import('../src/studio/backbones.js');
    const { modelsDir, RECORD_FILE } = await import('../src/backbones/model-cache.js');
    const none = await offeredBackbones();
    expect(none.default).toBe('mobilenet_v2_0.35');
    expect(none.backbones).toEqual([expect.objectContaining({ id: 'mobilenet_v2_0.35', installed: false, speed: 'fastest' })]);
    expect(none.backbones[0]!.description).toMatch(/not installed yet: downloaded when training starts \(needs the internet\)/);
    // a cached zoo network (as `tlearn models import` leaves it)
    const dir = path.join(modelsDir(), 'resnet50');
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'w.h5'), Buffer.alloc(3_000_000));
    await fs.writeFile(path.join(dir, RECORD_FILE), JSON.stringify({ name: 'resnet50', url: 'x', origin: 'import', hashOrigin: 'import', files: { 'w.h5': 'x' }, createdAt: '' }));
    try {
      const some = await offeredBackbones();
      expect(some.default).toBe('resnet50'); // the only installed one
      expect(some.backbones.find((b) => b.id === 'resnet50')).toMatchObject({ installed: true, bytes: 3_000_000, speed: 'very slow' });
      const local = await offeredBackbones([backbone]);
      expect(local.default).toBe(backbone);
      expect(local.backbones.map((b) => b.id)).toEqual([backbone, 'mobilenet_v2_0.35', 'resnet50']);
    } finally {
      await fs.rm(dir, { recursive: true });
    }
  });

  it('parses test-predictions.csv with quoted paths', () => {
    expect(parseCsv('path,true\n"a,""b"".jpg",x\nc.jpg,y\n')).toEqual([['path', 'true'], ['a,"b".jpg', 'x'], ['c.jpg', 'y']]);
  });
});

