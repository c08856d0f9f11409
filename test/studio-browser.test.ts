/**
 * tlearn studio in Debian's chromium (playwright-core), on a fresh empty project: create it from the Projects
 * page, make two classes from chromium's fake webcam (hold the button with the keyboard, then with the mouse;
 * about 30 frames each) and a third from uploaded files, see a hostile class name shown as text, run the check,
 * move an image and undo it (byte-identical), try a trained run and download its web export. Screenshots of every
 * page at 1280 and 390 pixels wide go to /tmp/tlearn-screenshots/studio-*.png.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStudioServer, STATE_FILES, type StudioServer } from '../src/studio/index.js';
import { trainFromFolder } from '../src/train/run.js';
import { hasChromium, launchChromium } from './browser.js';
import { makeDataset, makeTinyBackbone, tmpDir } from './helpers.js';
import { addClassOnPage, zipEntryNames, countFiles, post, recordedOnPage, waitForFiles } from './studio-helpers.js';

const SHOTS = '/tmp/tlearn-screenshots';
const FAKE_CAMERA = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];
const run = hasChromium() ? describe : describe.skip;

let browser: Browser;
let s: StudioServer;
let page: Page;
let projectRoot: string;
const errors: string[] = [];
const dialogs: string[] = [];

async function shot(name: string, p: Page = page): Promise<void> {
  await fs.mkdir(SHOTS, { recursive: true });
  await p.screenshot({ path: path.join(SHOTS, `studio-${name}.png`), fullPage: true, timeout: 90_000 });
}

/** The same page at phone width (390 px), with the session cookie of the main page. */
async function phoneShot(name: string, hash: string, waitFor: string): Promise<void> {
  const phone = await page.context().newPage();
  await phone.setViewportSize({ width: 390, height: 844 });
  try {
    await phone.goto(`${s.url}/#${hash}`);
    await phone.waitForSelector(waitFor, { timeout: 30_000 });
    await phone.waitForTimeout(300);
    await shot(`${name}-phone`, phone);
  } finally {
    await phone.close();
  }
}

const addClass = (name: string) => addClassOnPage(page, name);
const recorded = () => recordedOnPage(page);

run('tlearn studio in chromium', () => {
  beforeAll(async () => {
    browser = await launchChromium(FAKE_CAMERA);
    s = await createStudioServer({}); // no project: the page starts on Projects
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    page = await context.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of (4\d\d)/.test(m.text())) errors.push(m.text());
    });
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
  });

  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  it('creates a fresh empty project from the Projects page', async () => {
    await page.goto(s.openUrl);
    expect(page.url()).not.toMatch(/token=/); // the token left the address bar
    await page.waitForSelector('#new-project');
    await shot('projects');
    await phoneShot('projects', 'projects', '#new-project');
    const parent = tmpDir('tlearn-studio-browser-');
    await page.fill('#new-name', 'my first project');
    await page.fill('#new-where', parent);
    await page.click('#new-project button[type=submit]');
    await page.waitForSelector('.empty-project');
    projectRoot = path.join(parent, 'my first project');
    expect(await fs.readdir(projectRoot)).toEqual([]);
    await shot('data-empty');
  });

  it('makes two classes from the fake webcam (about 30 frames each, keyboard then mouse) and a third from uploaded files', async () => {
    await addClass('red things');
    await page.click('button[aria-label="Record red things with the webcam"]');
    await page.waitForFunction(() => (document.getElementById('webcam-video') as HTMLVideoElement).videoWidth > 0, null, { timeout: 20_000 });
    await page.selectOption('#webcam-rate', '10');
    // keyboard: Space held down on the focused button
    await page.focus('#webcam-hold');
    await page.keyboard.down('Space');
    await page.waitForFunction(() => Number((document.getElementById('webcam-count')!.textContent ?? '').match(/^(\d+)/)?.[1] ?? 0) >= 30, null, { timeout: 30_000 });
    await page.keyboard.up('Space');
    const n1 = await recorded();
    expect(await page.getAttribute('#webcam-hold', 'class')).not.toMatch(/recording/);
    expect(await waitForFiles(path.join(projectRoot, 'red things'), n1)).toBe(n1);
    expect(n1).toBeGreaterThanOrEqual(30);
    expect(n1).toBeLessThan(45);

    await addClass('blue things');
    await page.selectOption('#webcam-class', 'blue things');
    // mouse: pressed and held on the button
    await page.hover('#webcam-hold');
    await page.mouse.down();
    await page.waitForFunction(() => /blue things/.test(document.getElementById('webcam-count')!.textContent ?? '') && Number((document.getElementById('webcam-count')!.textContent ?? '').match(/^(\d+)/)?.[1] ?? 0) >= 30, null, { timeout: 30_000 });
    await page.mouse.up();
    const n2 = await recorded();
    expect(await waitForFiles(path.join(projectRoot, 'blue things'), n2)).toBe(n2);
    expect(n2).toBeGreaterThanOrEqual(30);
    await shot('data-webcam');

    await page.click('#webcam button:has-text("Close webcam")');
    await addClass('uploaded');
    const files = await makeDataset(tmpDir(), { classes: { green: 12 }, seed: 3, size: 64 });
    const list = (await fs.readdir(path.join(files, 'green'))).map((f) => path.join(files, 'green', f));
    await fs.writeFile(path.join(files, 'notes.txt'), 'not an image');
    await page.setInputFiles('.class-card[data-class="uploaded"] input[type=file]:not([webkitdirectory])', [...list, path.join(files, 'notes.txt')]);
    expect(await waitForFiles(path.join(projectRoot, 'uploaded'), 12)).toBe(12);
    await page.waitForFunction(() => document.querySelector('#toast')?.textContent?.includes('Not added: notes.txt'));
    await page.waitForFunction(() => document.querySelector('.class-card[data-class="uploaded"] .count')?.textContent === '12 images', null, { timeout: 10_000 });
    const counts = await page.$$eval('.class-card', (cards) => cards.map((c) => `${c.querySelector('h2')!.textContent}: ${c.querySelector('.count')!.textContent}`));
    expect(counts).toEqual([`blue things: ${n2} images`, `red things: ${n1} images`, 'uploaded: 12 images']);
    await page.waitForFunction(() => [...document.querySelectorAll('.class-card .thumb img')].filter((i) => (i as HTMLImageElement).naturalWidth > 0).length >= 12, null, { timeout: 30_000 });
    await shot('data');
    await phoneShot('data', 'data', '.class-card .thumb img');
  });

  it('adds a pasted picture to the class used last, and files dropped on a card to that card', async () => {
    const png = await fs.readFile(path.join(await makeDataset(tmpDir(), { classes: { red: 1 }, seed: 9, size: 64, ext: '.png' }), 'red', 'img_000.png'));
    const before = await countFiles(path.join(projectRoot, 'uploaded'));
    await page.focus('button[aria-label="Add images to uploaded"]'); // the class used last
    await page.evaluate(async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'image.png', { type: 'image/png' }));
      document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true }));
    }, png.toString('base64'));
    expect(await waitForFiles(path.join(projectRoot, 'uploaded'), before + 1)).toBe(before + 1);
    expect((await fs.readdir(path.join(projectRoot, 'uploaded'))).some((n) => /^pasted-.*\.png$/.test(n))).toBe(true);

    const reds = await countFiles(path.join(projectRoot, 'red things'));
    await page.evaluate(async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'dropped-1.png', { type: 'image/png' }));
      dt.items.add(new File(['hello, not a picture'], 'notes.png', { type: 'image/png' }));
      const card = document.querySelector('.class-card[data-class="red things"]')!;
      card.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, png.toString('base64'));
    expect(await waitForFiles(path.join(projectRoot, 'red things'), reds + 1)).toBe(reds + 1);
    expect(await fs.readdir(path.join(projectRoot, 'red things'))).toContain('dropped-1.png');
    await page.waitForFunction(() => document.querySelector('#toast')?.textContent?.includes('Not added: notes.png'));
  });

  it('shows a class named <img src=x onerror=alert(1)> as text, and no dialog fires', async () => {
    const name = '<img src=x onerror=alert(1)>';
    expect((await post(s.url, s.token, '/api/classes/add', { name })).status).toBe(200);
    await page.reload();
    await page.waitForSelector('.class-card h2');
    await page.waitForTimeout(500);
    const titles = await page.$$eval('.class-card h2', (hs) => hs.map((h) => h.textContent));
    expect(titles).toContain(name);
    expect(await page.$$eval('img[src="x"]', (imgs) => imgs.length)).toBe(0);
    expect(dialogs).toEqual([]);
    await shot('data-hostile-name');
    const undo = (await (await fetch(`${s.url}/api/actions`, { headers: { authorization: `Bearer ${s.token}` } })).json()).actions[0];
    expect((await post(s.url, s.token, '/api/actions/undo', { id: undo.id })).status).toBe(200);
  });

  it('lists the check findings with their pictures and fixes', async () => {
    await page.reload();
    await page.click('#run-check');
    await page.waitForSelector('#findings h2', { timeout: 60_000 });
    const text = await page.textContent('#findings');
    expect(text).toMatch(/Ready to train|Not ready/);
    expect(text).toMatch(/Small pictures/); // the uploaded 64x64 images
    await page.waitForTimeout(500);
    await shot('data-check');
  });

  it('moves a selected image to another class with the keyboard and Undo puts it back byte-identical', async () => {
    const file = path.join(projectRoot, 'uploaded', (await fs.readdir(path.join(projectRoot, 'uploaded'))).sort()[0]!);
    const hash = createHash('sha256').update(await fs.readFile(file)).digest('hex');
    await page.focus('.class-card[data-class="uploaded"] .thumb[data-index="0"]');
    await page.keyboard.press('Space');
    await page.waitForSelector('#selection:not([hidden])');
    await page.selectOption('#move-to', 'red things');
    await page.click('#move-selected');
    await page.waitForFunction(() => document.querySelector('#undo')?.getAttribute('aria-label')?.startsWith('Undo: Move'));
    expect(await fs.stat(file).then(() => true, () => false)).toBe(false);
    await page.click('#undo');
    await page.waitForFunction(() => document.querySelector('#toast')?.textContent?.startsWith('Undone'));
    expect(createHash('sha256').update(await fs.readFile(file)).digest('hex')).toBe(hash);
  });

  it('undoes an older change from the History, not only the latest', async () => {
    await page.click('#nav-data');
    await page.waitForSelector('.class-card');
    await addClass('first extra');
    await addClass('second extra');
    await page.click('#history');
    await page.waitForSelector('#history-list');
    await shot('history');
    // the older of the two: 'first extra' goes, 'second extra' stays
    await page.click('#history-list button[aria-label="Undo: Add class \'first extra\'"]');
    await page.waitForSelector('#history-list button[aria-label="Add class \'first extra\': undone"]');
    expect(await fs.stat(path.join(projectRoot, 'first extra')).then(() => true, () => false)).toBe(false);
    expect(await fs.stat(path.join(projectRoot, 'second extra')).then(() => true, () => false)).toBe(true);
    await page.keyboard.press('Escape');
    await page.click('#undo'); // the latest: 'second extra'
    await page.waitForFunction(() => document.querySelector('#toast')?.textContent?.includes("Undone: Add class 'second extra'"));
    expect(await fs.stat(path.join(projectRoot, 'second extra')).then(() => true, () => false)).toBe(false);
  });

  it('tries a trained run on an uploaded picture and downloads its web export as a zip', async () => {
    const stateDir = s.ctx.project!.stateDir;
    const data = await makeDataset(tmpDir(), { classes: { red: 10, green: 10, blue: 10 }, seed: 5, size: 64 });
    const backbone = await makeTinyBackbone(tmpDir());
    const outDir = path.join(stateDir, STATE_FILES.runsDir, 'run-1');
    await trainFromFolder({ data, backbone, epochs: 8, batchSize: 8, lr: 0.02, seed: 2, out: outDir });
    await fs.writeFile(path.join(stateDir, STATE_FILES.runs), JSON.stringify([{ id: 'run-1', outDir, mode: 'transfer', startedAt: new Date().toISOString(), status: 'done', testAccuracy: 1 }]));
    await page.click('#nav-try');
    await page.waitForSelector('#try-files');
    await page.waitForFunction(() => /classes/.test(document.getElementById('try-info')?.textContent ?? ''), null, { timeout: 60_000 });
    const red = path.join(data, 'red', (await fs.readdir(path.join(data, 'red')))[0]!);
    await page.setInputFiles('#try-files', [red]);
    await page.waitForSelector('.result[data-label]', { timeout: 60_000 });
    expect(await page.getAttribute('.result', 'data-label')).toBe('red');
    await shot('try');
    await phoneShot('try', 'try', '#try-files');

    await page.click('#nav-export');
    await page.waitForSelector('#export-web');
    expect(await page.textContent('#serve-command')).toBe(`tlearn serve ${outDir}`);
    await shot('export');
    await phoneShot('export', 'export', '#export-web');
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), page.click('#export-web')]);
    const zipFile = path.join(tmpDir(), 'web.zip');
    await download.saveAs(zipFile);
    const entries = await zipEntryNames(zipFile);
    const base = entries[0]!.split('/')[0]!;
    expect(base).toMatch(/run-1-web$/);
    for (const f of ['index.html', 'model.onnx', 'metadata.json', 'classifier.js', 'preprocess.js', 'assets/page.js']) expect(entries, f).toContain(`${base}/${f}`);
    // the other two formats, with the page's own cookie
    for (const [format, file] of [['onnx', 'model.onnx'], ['tfjs', 'model.json']]) {
      const r = await page.request.get(`${s.url}/api/export?run=run-1&format=${format}`);
      expect(r.status(), format).toBe(200);
      expect(r.headers()['content-disposition']).toMatch(new RegExp(`run-1-${format}\\.zip`));
      const body = await r.body();
      expect(body.subarray(0, 2).toString()).toBe('PK');
      expect(body.includes(Buffer.from(file)), `${format} zip holds ${file}`).toBe(true);
    }
    expect((await page.request.get(`${s.url}/api/export?run=run-1&format=exe`)).status()).toBe(400);
    expect((await page.request.get(`${s.url}/api/export?run=..%2F..&format=web`)).status()).toBe(400);
  });

  it('has placeholder Train and Review pages and no page errors', async () => {
    await page.click('#nav-train');
    await page.waitForSelector('main[data-page="train"] h1');
    await page.click('#nav-review');
    await page.waitForSelector('main[data-page="review"] h1');
    expect(errors).toEqual([]);
    expect(dialogs).toEqual([]);
  });
});
