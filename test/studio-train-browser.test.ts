/**
 * The Train and Review pages in headless Chromium against a real studio (createStudioServer on loopback, a tiny
 * backbone): settings with their hints and estimate, Start, live progress and the curves, a reload during training
 * that finds the run still going, the history; Review: the metrics, the confusion matrix (a cell opened with the
 * keyboard shows its photos), moving a photo to another class and undoing it (byte-identical, back in place).
 * Screenshots at 1280 and 390 px wide go to /tmp/tlearn-screenshots/studio-*.png.
 */
import { existsSync, mkdirSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { createStudioServer, type StudioServer } from '../src/studio/server.js';
import { hasChromium, launchChromium } from './browser.js';
import { makeDataset, makeTinyBackbone, tmpDir } from './helpers.js';

export const SHOTS = '/tmp/tlearn-screenshots';
const run = hasChromium() ? describe : describe.skip;

let studio: StudioServer | undefined;
let browser: Browser | undefined;
let project: string;

beforeAll(async () => {
  if (!hasChromium()) return;
  mkdirSync(SHOTS, { recursive: true });
  project = await makeDataset(path.join(tmpDir(), 'shapes'), { classes: { red: 60, green: 60, blue: 60 }, seed: 8, size: 64 });
  const backbone = await makeTinyBackbone(path.join(tmpDir(), 'tiny-backbone'));
  studio = await createStudioServer({ folder: project, jobs: { backbones: [backbone], threads: 1 } });
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await studio?.close();
});

async function shot(page: Page, name: string, width: number): Promise<void> {
  await page.setViewportSize({ width, height: width < 600 ? 844 : 900 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(SHOTS, name), fullPage: true });
}

async function openPage(width: number, hash: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser!.newPage({ viewport: { width, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // failed requests are listed by their address (the console only says "Failed to load resource")
  page.on('console', (m) => m.type() === 'error' && !/^Failed to load resource/.test(m.text()) && errors.push(m.text()));
  page.on('response', (r) => r.status() >= 400 && errors.push(`${r.status()} ${new URL(r.url()).pathname}${new URL(r.url()).search}`));
  page.on('dialog', (d) => {
    errors.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  await page.goto(`${studio!.openUrl}${hash}`);
  return { page, errors };
}

run('studio Train and Review pages in Chromium', () => {
  it('train with live progress and curves, reload during training, then review, move a photo and undo it', async () => {
    const { page, errors } = await openPage(1280, '#train');
    await page.waitForSelector('#train-form');
    // the settings say what they are in plain words; the estimate appears
    expect(await page.textContent('#train-form')).toMatch(/Quick \(transfer\).*Thorough \(fine-tune\)/s);
    await page.waitForFunction(() => /About \d+ s on a 2-core computer \(an estimate/.test(document.querySelector('#train-estimate')?.textContent ?? ''));
    expect(await page.isDisabled('#train-augment')).toBe(true);
    expect(await page.inputValue('#train-epochs')).toBe('40');
    await page.fill('#train-epochs', '1000');
    // keyboard: Start is reachable and pressable with the keyboard
    await page.focus('#train-start');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#live:not([hidden])');
    // at least one live update while running, and the curves once epochs come in
    await page.waitForFunction(() => document.querySelector('#live')?.getAttribute('data-status') === 'running' && Number(document.querySelector('#live')?.getAttribute('data-epochs')) >= 3, null, { timeout: 60_000 });
    expect(await page.locator('#curve-loss path.series').count()).toBeGreaterThanOrEqual(1);
    await shot(page, 'studio-train-during-1280.png', 1280);
    const before = Number(await page.getAttribute('#live', 'data-epochs'));
    // reload during training: the run is still going, and its past epochs are all there again
    await page.reload();
    await page.waitForSelector('#live:not([hidden])');
    await page.waitForFunction((n) => Number(document.querySelector('#live')?.getAttribute('data-epochs')) >= n, before);
    const status = await page.getAttribute('#live', 'data-status');
    expect(['running', 'done']).toContain(status);
    expect(status).toBe('running');
    expect(await page.isVisible('#train-cancel')).toBe(true);
    // the narrow screen, while training
    await shot(page, 'studio-train-during-390.png', 390);
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.waitForFunction(() => document.querySelector('#live')?.getAttribute('data-status') === 'done', null, { timeout: 120_000 });
    expect(await page.textContent('#live-result')).toMatch(/The model got \d+(\.\d)?% of the test photos right/);
    expect(await page.isVisible('#train-review')).toBe(true);
    expect(await page.locator('#history-rows tr').count()).toBe(1);
    expect(await page.textContent('#history-rows')).toMatch(/% of test photos right/);
    await shot(page, 'studio-train-after-1280.png', 1280);
    await shot(page, 'studio-train-after-390.png', 390);
    await page.setViewportSize({ width: 1280, height: 900 });

    // Review
    await page.click('#train-review');
    await page.waitForSelector('#rv-confusion');
    expect(await page.textContent('#rv-test')).toMatch(/Test photos right\d+(\.\d)?%/);
    // a confusion cell opened with the keyboard shows its photos
    const cell = page.locator('#rv-confusion button[data-t="0"][data-p="0"]');
    await cell.focus();
    await page.keyboard.press('Enter');
    await page.waitForSelector('#rv-cell-grid .shot');
    const n = Number(await cell.textContent());
    expect(await page.locator('#rv-cell-grid .shot').count()).toBe(n);
    await shot(page, 'studio-review-1280.png', 1280);
    await shot(page, 'studio-review-390.png', 390);
    await page.setViewportSize({ width: 1280, height: 900 });
    // move one photo of that cell to another class, then undo: back in place, byte-identical
    const ref = (await page.getAttribute('#rv-cell-grid .shot >> nth=0', 'data-path'))!;
    const [cls, file] = ref.split('/') as [string, string];
    const original = await fs.readFile(path.join(project, cls, file));
    await page.check('#rv-cell-grid .shot >> nth=0 >> input.pick');
    const other = ['blue', 'green', 'red'].find((c) => c !== cls)!;
    const otherBefore = new Set(await fs.readdir(path.join(project, other)));
    await page.selectOption('#rv-cell .bulk select', other);
    await page.click('#rv-cell .bulk button:has-text("Move to this class")');
    await page.waitForSelector('#review-undo:not([hidden])');
    expect(existsSync(path.join(project, cls, file))).toBe(false);
    // the same name is taken there (every class has img_000.jpg...): the move never overwrites, it gets a new name
    const added = (await fs.readdir(path.join(project, other))).filter((f) => !otherBefore.has(f));
    expect(added).toHaveLength(1);
    expect(await fs.readFile(path.join(project, other, added[0]!))).toEqual(original);
    await page.click('#review-undo');
    await page.waitForSelector('#review-undo[hidden]', { state: 'attached' });
    expect(new Set(await fs.readdir(path.join(project, other)))).toEqual(otherBefore);
    expect(await fs.readFile(path.join(project, cls, file))).toEqual(original);
    expect(errors).toEqual([]);
    await page.close();
  });
});
