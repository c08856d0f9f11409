/**
 * npm run bench:studio: the Data page of a generated 10,000-image project (9,000 + 1,000 images of 32x32) in
 * Debian's chromium. Measures, in one run: the list of every image (server), the time from opening the
 * page to its first thumbnails with an empty thumbnail cache and again with a warm one, and a scroll through all
 * 9,000 images of the big class one screenful per frame (the longest gap between frames, how many thumbnail
 * buttons exist at most: the grid is virtualised), then the time until the last row's thumbnails show.
 * Bounded: every wait has a time limit. Writes the numbers between the bench-studio markers in BENCHMARKS.md.
 */
import { existsSync, promises as fs, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { launchChromium } from '../test/browser.js';
import { log, machine, writeBenchSection } from './report.js';

const PROJECT = path.join(os.tmpdir(), 'tlearn-bench-studio-10k');
const CLASSES = { big: 9000, small: 1000 };

async function makeProject(): Promise<void> {
  const marker = path.join(PROJECT, '.complete');
  if (existsSync(marker)) return;
  await fs.rm(PROJECT, { recursive: true, force: true });
  let k = 0;
  const t0 = performance.now();
  for (const [c, n] of Object.entries(CLASSES)) {
    await fs.mkdir(path.join(PROJECT, c), { recursive: true });
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++, k++) {
      const raw = Buffer.alloc(32 * 32 * 3);
      for (let p = 0; p < raw.length; p++) raw[p] = (p * 7 + k * 31 + (p % 3) * k * 13) & 255;
      jobs.push(sharp(raw, { raw: { width: 32, height: 32, channels: 3 } }).jpeg({ quality: 80 }).toFile(path.join(PROJECT, c, `img_${String(i).padStart(5, '0')}.jpg`)));
      if (jobs.length >= 64) await Promise.all(jobs.splice(0));
    }
    await Promise.all(jobs);
  }
  await fs.writeFile(marker, '');
  log(`generated ${k} images in ${((performance.now() - t0) / 1000).toFixed(1)} s under ${PROJECT}`);
}

async function main(): Promise<void> {
  await makeProject();
  const loadAtStart = os.loadavg()[0]!.toFixed(1);
  process.env.TLEARN_HOME = mkdtempSync(path.join(os.tmpdir(), 'tlearn-bench-studio-home-'));
  const { createStudioServer } = await import('../src/studio/index.js');
  const s = await createStudioServer({ folder: PROJECT });
  const browser = await launchChromium();
  const rows: Array<[string, string]> = [];
  try {
    let t = performance.now();
    const list = await fetch(`${s.url}/api/classes?images=1`, { headers: { authorization: `Bearer ${s.token}` } });
    const listed = (await list.json()).classes.reduce((n: number, c: { count: number }) => n + c.count, 0);
    rows.push([`classes and the names of all ${listed} images (server, one JSON answer)`, `${(performance.now() - t).toFixed(0)} ms`]);

    const firstThumbs = async (label: string) => {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.addInitScript('window.__name = (f) => f'); // esbuild's keepNames helper, for functions passed to evaluate
      const t0 = performance.now();
      await page.goto(s.openUrl);
      await page.waitForFunction(() => [...document.querySelectorAll('.class-card[data-class="big"] .thumb img')].filter((i) => (i as HTMLImageElement).naturalWidth > 0).length >= 8, null, { timeout: 30_000 });
      const ms = performance.now() - t0;
      if (process.env.BENCH_VERBOSE) {
        const entries = await page.evaluate(() => [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')].slice(0, 16).map((e: any) => `${e.name.replace(/^https?:\/\/[^/]+/, '').slice(0, 50)} ${e.startTime.toFixed(0)}→${e.responseEnd.toFixed(0)}`));
        log(`${label}:\n  ${entries.join('\n  ')}`);
      }
      rows.push([`open the page → first thumbnails (${label})`, `${ms.toFixed(0)} ms`]);
      return { page, ms };
    };
    const cold = await firstThumbs('empty thumbnail cache');
    await cold.page.close();
    const warm = await firstThumbs('thumbnails cached');
    const page = warm.page;

    // scroll the big class's grid through all its rows, one screenful per frame
    t = performance.now();
    const scroll = await page.evaluate(
      () =>
        new Promise<{ frames: number; maxGapMs: number; p95GapMs: number; maxButtons: number; rows: number }>((resolve) => {
          const grid = document.querySelector('.class-card[data-class="big"] .grid') as HTMLElement;
          const gaps: number[] = [];
          let last = performance.now();
          let maxButtons = 0;
          const step = () => {
            const now = performance.now();
            gaps.push(now - last);
            last = now;
            maxButtons = Math.max(maxButtons, grid.querySelectorAll('.thumb').length);
            if (grid.scrollTop + grid.clientHeight >= grid.scrollHeight - 1) {
              gaps.sort((a, b) => a - b);
              resolve({ frames: gaps.length, maxGapMs: gaps[gaps.length - 1]!, p95GapMs: gaps[Math.floor(gaps.length * 0.95)]!, maxButtons, rows: Math.round(grid.scrollHeight / 84) });
              return;
            }
            grid.scrollTop += grid.clientHeight;
            requestAnimationFrame(step);
          };
          requestAnimationFrame(step);
        }),
    );
    const scrollMs = performance.now() - t;
    rows.push([`scroll through all ${CLASSES.big} images (${scroll.rows} rows, one screenful per frame)`, `${scroll.frames} frames in ${scrollMs.toFixed(0)} ms; frame gap p95 ${scroll.p95GapMs.toFixed(1)} ms, max ${scroll.maxGapMs.toFixed(1)} ms`]);
    rows.push(['thumbnail buttons in the page at most (virtualised)', `${scroll.maxButtons} of ${CLASSES.big}`]);
    t = performance.now();
    await page.waitForFunction(() => {
      const imgs = [...document.querySelectorAll('.class-card[data-class="big"] .thumb img')] as HTMLImageElement[];
      const lastName = 'img_08999.jpg';
      return imgs.some((i) => i.closest('.thumb')?.getAttribute('aria-label') === lastName && i.naturalWidth > 0);
    }, null, { timeout: 60_000 });
    rows.push(['after the scroll: the last row’s thumbnails shown (made on demand)', `${(performance.now() - t).toFixed(0)} ms`]);
    const goal = cold.ms <= 1000 ? 'met' : 'NOT met';
    const body = [
      '## tlearn studio: the Data page with 10,000 images',
      '',
      `${new Date().toISOString().slice(0, 10)} · ${machine()} · load average at the start ${loadAtStart} (other work on the same 2 cores) · \`npm run bench:studio\` (Debian chromium, headless; 9,000 + 1,000 generated 32x32 JPEGs)`,
      '',
      '| what | measured |',
      '| --- | --- |',
      ...rows.map(([a, b]) => `| ${a} | ${b} |`),
      '',
      `Goal: first thumbnails within 1 s of opening the page with an empty cache — ${goal}. Only the rows in view exist in the page, so the number of thumbnail buttons stays bounded whatever the class size; thumbnails are made once per image content and cached under TLEARN_HOME/studio/thumbs.`,
    ].join('\n');
    process.stdout.write(`${body}\n`);
    await writeBenchSection('bench-studio', body);
  } finally {
    await browser.close();
    await s.close();
  }
}

main().catch((e) => {
  process.stderr.write(`${e?.stack ?? e}\n`);
  process.exitCode = 1;
});
