import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { computeMetrics } from '../src/evaluate/metrics.js';
import { confusionHeatmap, lineChart } from '../src/report/svg.js';
import { predictionsCsv, topLossGallery } from '../src/report/html.js';
import { trainFromFolder, type TrainRunResult } from '../src/train/run.js';
import { checkPage, hasChromium } from './browser.js';
import { makeDataset, makeTinyBackbone, tmpDir } from './helpers.js';

let run: TrainRunResult;
let data: string;

beforeAll(async () => {
  data = await makeDataset(tmpDir(), { classes: { red: 12, green: 12, blue: 12, yellow: 12 }, seed: 11 });
  run = await trainFromFolder({ data, backbone: await makeTinyBackbone(tmpDir()), epochs: 6, batchSize: 8, lr: 0.02, seed: 3, out: path.join(tmpDir(), 'run') });
});

describe('report.html', () => {
  it('is one file with every section, plus the plots as PNG next to it', async () => {
    const html = await fs.readFile(run.report.html, 'utf8');
    for (const id of ['headline', 'summary', 'dataset', 'curves', 'metrics', 'classes', 'confusion', 'gallery', 'calibration']) expect(html, id).toContain(`id="${id}"`);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html.match(/class="cm-cell"/g)).toHaveLength(16);
    expect(run.report.pngs.map((p) => path.basename(p)).sort()).toEqual(['class-counts.png', 'confusion.png', 'curves.png', 'reliability.png']);
    for (const p of run.report.pngs) {
      const meta = await sharp(p).metadata();
      expect(meta.format).toBe('png');
      expect(meta.width).toBeGreaterThan(300);
    }
    const csv = (await fs.readFile(path.join(run.outDir, 'test-predictions.csv'), 'utf8')).trim().split('\n');
    expect(csv[0]).toBe('path,true,predicted,probability,true_probability');
    expect(csv).toHaveLength(run.metrics.test.n + 1);
  });

  it.runIf(hasChromium())('opens in headless Chromium with no console errors and no network requests', async () => {
    const r = await checkPage(
      run.report.html,
      'small-run-report.png',
      `(() => { const th = document.querySelectorAll('#per-class th')[1]; th.click(); th.click();
         const f1 = Array.from(document.querySelectorAll('#per-class tbody tr td:nth-child(2)')).map(td => parseFloat(td.textContent));
         return { f1, cells: document.querySelectorAll('.cm-cell').length, thumbs: document.querySelectorAll('#dataset img').length }; })()`,
    );
    expect(r.consoleErrors).toEqual([]);
    expect(r.requests).toEqual([]);
    expect(r.result.cells).toBe(16);
    expect(r.result.thumbs).toBe(16);
    // two clicks on the F1 header: descending order
    expect(r.result.f1).toEqual([...r.result.f1].sort((a: number, b: number) => b - a));
    const shot = await sharp(r.screenshot).metadata();
    expect(shot.height).toBeGreaterThan(1500);
  });
});

describe('report helpers', () => {
  it('the gallery lists the most confidently wrong images first', () => {
    const probs = new Float32Array([0.9, 0.1, 0.2, 0.8, 0.4, 0.6, 0.7, 0.3]);
    const g = topLossGallery(probs, [1, 1, 0, 0], ['a', 'b', 'c', 'd'], ['x', 'y']);
    expect(g.map((i) => i.path)).toEqual(['a', 'c']);
    expect(g[0]).toMatchObject({ trueLabel: 'y', predicted: 'x', trueProbability: expect.closeTo(0.1, 5) });
    expect(predictionsCsv(probs, [1, 1, 0, 0], ['a,1', 'b', 'c', 'd'], ['x', 'y']).split('\n')[1]).toBe('"a,1",y,x,0.900000,0.100000');
  });

  it('charts escape labels and keep a point per epoch', () => {
    const svg = lineChart([{ name: '<scratch>', points: [[1, 0.5], [2, NaN], [3, 0.7]] }], { title: 'a & b', xLabel: 'epoch', yLabel: 'acc', integerX: true });
    expect(svg).toContain('&lt;scratch&gt;');
    expect(svg).toContain('a &amp; b');
    expect(svg.match(/<circle/g)).toHaveLength(2);
    const m = computeMetrics(new Float32Array([1, 0, 0, 1]), [0, 1], ['p"q', 'r']);
    expect(confusionHeatmap(['p"q', 'r'], m.confusion)).toContain('p&quot;q');
  });
});
