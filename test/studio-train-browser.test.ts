/**
 * The whole studio loop in Debian's chromium (playwright-core), the acceptance: on a fresh empty project,
 * two classes from chromium's fake webcam (about 30 frames each) and a third from uploaded files; train (transfer,
 * a tiny backbone) from the Train page and see live progress and the curves; reload during training and find the
 * run still going; on Review, open a confusion-matrix cell with the keyboard, move a photo to another class and
 * undo it (byte-identical, back in place), see the possible label issues; train again; classify an uploaded image
 * on the Try page; download the web export zip and check its files. Screenshots of Train (during and after
 * training) and Review at 1280 and 390 px wide go to /tmp/tlearn-screenshots/studio-*.png.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStudioServer, type StudioServer } from '../src/studio/index.js';
import { hasChromium, launchChromium } from './browser.js';
import { makeDataset, makeTinyBackbone, tmpDir } from './helpers.js';
import { addClassOnPage, zipEntryNames, recordedOnPage, waitForFiles } from './studio-helpers.js';

const SHOTS = '/tmp/tlearn-screenshots';
const FAKE_CAMERA = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];
const run = hasChromium() ? describe : describe.skip;

let browser: Browser;
let s: StudioServer;
let page: Page;
let projectRoot: string;
const errors: string[] = [];
const dialogs: string[] = [];

/** A full-page screenshot at `width` px, from the top of the page. */
async function shot(name: string, width: number): Promise<void> {
  await fs.mkdir(SHOTS, { recursive: true });
  await page.setViewportSize({ width, height: width < 600 ? 844 : 900 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.waitForTimeout(200);
  await page.screenshot({ path: path.join(SHOTS, `studio-${name}-${width}.png`), fullPage: true, timeout: 90_000 });
  await page.setViewportSize({ width: 1280, height: 900 });
}

const addClass = (name: string) => addClassOnPage(page, name);
const recorded = () => recordedOnPage(page);
const liveStatus = () => page.getAttribute('#live', 'data-status');

run('the studio loop in chromium: collect, train, review, train again, try, export', () => {
  beforeAll(async () => {
    const backbone = await makeTinyBackbone(path.join(tmpDir(), 'tiny-backbone'));
    browser = await launchChromium(FAKE_CAMERA);
    s = await createStudioServer({ jobs: { backbones: [backbone], threads: 1 } }); // no project yet
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    page = await context.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && !/^Failed to load resource/.test(m.text()) && errors.push(m.text()));
    // failed requests, by address (the console only says "Failed to load resource")
    // (the shell asks for the classes early, before it knows whether a project is open: "no project yet" is a 409)
    page.on('response', (r) => r.status() >= 400 && !(r.status() === 409 && new URL(r.url()).pathname === '/api/classes' && !projectRoot) && errors.push(`${r.status()} ${new URL(r.url()).pathname}`));
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  it('a fresh empty project: two classes from the fake webcam (about 30 frames each) and a third from uploaded files', async () => {
    await page.goto(s.openUrl);
    await page.waitForSelector('#new-project');
    const parent = tmpDir('tlearn-studio-loop-');
    await page.fill('#new-name', 'loop');
    await page.fill('#new-where', parent);
    await page.click('#new-project button[type=submit]');
    await page.waitForSelector('.empty-project');
    projectRoot = path.join(parent, 'loop');
    expect(await fs.readdir(projectRoot)).toEqual([]);
    for (const [name, first] of [['cup', true], ['hand', false]] as const) {
      await addClass(name);
      if (first) {
        await page.click(`button[aria-label="Record ${name} with the webcam"]`);
        await page.waitForFunction(() => (document.getElementById('webcam-video') as HTMLVideoElement).videoWidth > 0, null, { timeout: 20_000 });
        await page.selectOption('#webcam-rate', '10');
      } else await page.selectOption('#webcam-class', name);
      await page.focus('#webcam-hold');
      await page.keyboard.down('Space');
      await page.waitForFunction((n) => (document.getElementById('webcam-count')!.textContent ?? '').includes(n) && Number((document.getElementById('webcam-count')!.textContent ?? '').match(/^(\d+)/)?.[1] ?? 0) >= 30, name, { timeout: 30_000 });
      await page.keyboard.up('Space');
      // the count settles once the last frames in flight are saved
      let n = await recorded();
      for (let stable = 0; stable < 5; ) {
        await page.waitForTimeout(150);
        const m = await recorded();
        stable = m === n ? stable + 1 : 0;
        n = m;
      }
      expect(n).toBeGreaterThanOrEqual(30);
      expect(await waitForFiles(path.join(projectRoot, name), n)).toBe(n);
    }
    await page.click('#webcam button:has-text("Close webcam")');
    await addClass('shapes');
    const files = await makeDataset(tmpDir(), { classes: { green: 40 }, seed: 3, size: 96 });
    const list = (await fs.readdir(path.join(files, 'green'))).map((f) => path.join(files, 'green', f));
    await page.setInputFiles('.class-card[data-class="shapes"] input[type=file]:not([webkitdirectory])', list);
    expect(await waitForFiles(path.join(projectRoot, 'shapes'), 40)).toBe(40);
  });

  it('trains (transfer) with live progress and the curves; a reload during training finds the run still going', async () => {
    await page.click('#nav-train');
    await page.waitForSelector('#train-form');
    expect(await page.textContent('#train-form')).toMatch(/Quick \(transfer\).*Thorough \(fine-tune\)/s);
    await page.waitForFunction(() => /^\d+ photos in this project\. About \d+ s on a 2-core computer \(an estimate/.test(document.querySelector('#train-estimate')?.textContent ?? ''));
    expect(await page.inputValue('#train-epochs')).toBe('40'); // the CLI's default for transfer
    expect(await page.isDisabled('#train-augment')).toBe(true); // fine-tuning only
    expect(await page.textContent('#history-rows')).toMatch(/No trainings yet/);
    await page.fill('#train-epochs', '1000');
    await page.focus('#train-start');
    await page.keyboard.press('Enter'); // the keyboard starts it
    await page.waitForSelector('#live:not([hidden])');
    // at least one live update while it runs, then the curves as epochs end
    await page.waitForFunction(() => document.querySelector('#live')?.getAttribute('data-status') === 'running' && Number(document.querySelector('#live')?.getAttribute('data-updates')) >= 2, null, { timeout: 60_000 });
    await page.waitForFunction(() => Number(document.querySelector('#live')?.getAttribute('data-epochs')) >= 2 && document.querySelectorAll('#curve-accuracy path.series').length >= 1, null, { timeout: 60_000 });
    expect(await liveStatus()).toBe('running');
    const seen = Number(await page.getAttribute('#live', 'data-epochs'));
    await page.reload();
    await page.waitForSelector('#live:not([hidden])');
    // the same run, still going, its past epochs replayed
    await page.waitForFunction((n) => Number(document.querySelector('#live')?.getAttribute('data-epochs')) >= n, seen);
    expect(await liveStatus()).toBe('running');
    expect(await page.isVisible('#train-cancel')).toBe(true);
    expect(await page.textContent('#history-rows')).toMatch(/training…/);
    await shot('train-during', 1280);
    await shot('train-during', 390);
    await page.waitForFunction(() => document.querySelector('#live')?.getAttribute('data-status') === 'done', null, { timeout: 180_000 });
    expect(await page.textContent('#live-result')).toMatch(/The model got \d+(\.\d)?% of the test photos right/);
    expect(Number(await page.getAttribute('#live', 'data-epochs'))).toBe(1000);
    expect(await page.textContent('#history-rows')).toMatch(/% of test photos right/);
    await shot('train-after', 1280);
    await shot('train-after', 390);
  });

  it('Review: a confusion cell opened with the keyboard shows its photos; a photo moved to another class and undone is back, byte-identical; label issues are listed', async () => {
    await page.click('#train-review');
    await page.waitForSelector('#rv-confusion');
    expect(await page.textContent('#rv-test')).toMatch(/Test photos right\d+(\.\d)?%/);
    expect(await page.locator('#rv-per-class tbody tr').count()).toBe(3);
    const cell = page.locator('#rv-confusion button[data-t="2"][data-p="2"]'); // shapes → shapes
    await cell.focus();
    await page.keyboard.press('Enter');
    await page.waitForSelector('#rv-cell-grid .shot');
    expect(await page.locator('#rv-cell-grid .shot').count()).toBe(Number(await cell.textContent()));
    await page.waitForSelector('#rv-issues-list, #rv-issues p.muted:not(:has-text("Looking"))', { timeout: 120_000 });
    await shot('review', 1280);
    await shot('review', 390);
    const ref = (await page.getAttribute('#rv-cell-grid .shot >> nth=0', 'data-path'))!;
    const [cls, file] = ref.split('/') as [string, string];
    const original = await fs.readFile(path.join(projectRoot, cls, file));
    const cupBefore = new Set(await fs.readdir(path.join(projectRoot, 'cup')));
    await page.check('#rv-cell-grid .shot >> nth=0 >> input.pick');
    await page.selectOption('#rv-cell .bulk select', 'cup');
    await page.click('#rv-cell .bulk button:has-text("Move to this class")');
    await page.waitForSelector('#review-undo:not([hidden])');
    await expect(fs.stat(path.join(projectRoot, cls, file))).rejects.toThrow();
    const added = (await fs.readdir(path.join(projectRoot, 'cup'))).filter((f) => !cupBefore.has(f));
    expect(added).toHaveLength(1);
    expect(await fs.readFile(path.join(projectRoot, 'cup', added[0]!))).toEqual(original);
    await page.click('#review-undo');
    await page.waitForSelector('#review-undo', { state: 'hidden' });
    expect(new Set(await fs.readdir(path.join(projectRoot, 'cup')))).toEqual(cupBefore);
    expect(await fs.readFile(path.join(projectRoot, cls, file))).toEqual(original);
  });

  it('trains again, classifies an uploaded image on the Try page and downloads the web export zip', async () => {
    await page.click('#nav-train');
    await page.waitForSelector('#train-form');
    await page.click('#train-start');
    await page.waitForFunction(() => document.querySelectorAll('#history-rows tr').length === 2, null, { timeout: 30_000 });
    await page.waitForFunction(() => document.querySelector('#live')?.getAttribute('data-status') === 'done', null, { timeout: 180_000 });
    const { runs } = await (await fetch(`${s.url}/api/train/runs`, { headers: { authorization: `Bearer ${s.token}` } })).json();
    expect(runs.map((r: any) => r.status)).toEqual(['done', 'done']);
    await page.click('#nav-try');
    await page.waitForSelector('#try-files');
    await page.waitForFunction(() => /classes/.test(document.getElementById('try-info')?.textContent ?? ''), null, { timeout: 60_000 });
    const img = await makeDataset(tmpDir(), { classes: { green: 1 }, seed: 11, size: 96 });
    await page.fill('#try-threshold', '0'); // always name a class
    await page.setInputFiles('#try-files', [path.join(img, 'green', 'img_000.jpg')]);
    await page.waitForSelector('.result[data-label]', { timeout: 60_000 });
    expect(['cup', 'hand', 'shapes']).toContain(await page.getAttribute('.result', 'data-label'));
    expect((await page.$$eval('.result .bars li > span:first-child', (l) => l.map((x) => x.textContent))).sort()).toEqual(['cup', 'hand', 'shapes']);
    await page.click('#nav-export');
    await page.waitForSelector('#export-web');
    expect(await page.textContent('#serve-command')).toBe(`tlearn serve ${runs[0].outDir}`);
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), page.click('#export-web')]);
    const zipFile = path.join(tmpDir(), 'web.zip');
    await download.saveAs(zipFile);
    const entries = await zipEntryNames(zipFile);
    const base = entries[0]!.split('/')[0]!;
    expect(base).toBe(`loop-${runs[0].id}-web`);
    for (const f of ['index.html', 'model.onnx', 'metadata.json', 'classifier.js', 'preprocess.js', 'assets/page.js']) expect(entries, f).toContain(`${base}/${f}`);
    expect(errors).toEqual([]);
    expect(dialogs).toEqual([]);
  });
});
