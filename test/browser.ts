/** Headless Chromium (Debian's package, driven by playwright-core) for report tests. */
import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOTS = path.join(os.tmpdir(), 'tlearn-report-screenshots');

export function hasChromium(): boolean {
  if (existsSync(CHROMIUM)) return true;
  console.warn(`SKIPPED: browser tests need Chromium at ${CHROMIUM} (.ci/run installs Debian's chromium package)`);
  return false;
}

export interface PageCheck {
  consoleErrors: string[];
  /** Every URL the page requested other than the report file itself. */
  requests: string[];
  screenshot: string;
  /** Values computed in the page by `evaluate`. */
  result: any;
}

/** Headless Debian chromium with the flags these tests need (plus `extraArgs`, e.g. a fake camera). */
export async function launchChromium(extraArgs: string[] = []): Promise<import('playwright-core').Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...extraArgs],
  });
}

/** Opens an HTML file, records console errors and requests, runs `evaluate` in the page, takes a full-page screenshot. */
export async function checkPage(file: string, screenshotName: string, evaluate: string = 'null'): Promise<PageCheck> {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    const consoleErrors: string[] = [];
    const requests: string[] = [];
    const url = pathToFileURL(file).href;
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    page.on('request', (r) => {
      if (r.url() !== url && !r.url().startsWith('data:')) requests.push(r.url());
    });
    await page.goto(url, { waitUntil: 'load' });
    const result = await page.evaluate(evaluate);
    mkdirSync(SCREENSHOTS, { recursive: true });
    const screenshot = path.join(SCREENSHOTS, screenshotName);
    await page.screenshot({ path: screenshot, fullPage: true });
    return { consoleErrors, requests, screenshot, result };
  } finally {
    await browser.close();
  }
}
