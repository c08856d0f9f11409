/**
 * report.html: one self-contained file (inline CSS, inline SVG plots, thumbnails as data: URLs, no network)
 * with the run summary, dataset overview, training curves, test metrics, a sortable per-class table, the
 * confusion matrix with the top confusions, the most confidently wrong test images and a reliability diagram.
 * The plots are also written as PNG files next to it.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Metrics } from '../evaluate/metrics.js';
import type { EpochLog } from '../engine/fit.js';
import type { CalibrationSummary } from '../engine/calibration.js';
import { writeFileAtomic } from '../util/fs.js';
import { barChart, confusionHeatmap, esc, lineChart, PALETTE, reliabilityDiagram, sideBySide, type Series } from './svg.js';
import { svgToPng, thumbnails } from './thumbnails.js';

export interface ReportModel {
  name: string;
  history?: EpochLog[];
  test?: Metrics;
  /** Seconds this model took (shown in the metrics table). */
  seconds?: number;
}

export interface GalleryItem {
  path: string;
  trueLabel: string;
  predicted: string;
  /** Probability of the predicted class. */
  probability: number;
  /** Probability given to the true class. */
  trueProbability: number;
}

export interface ReportInput {
  title: string;
  kind: 'train' | 'compare' | 'evaluate';
  createdAt: string;
  version: string;
  /** Rows of the run summary table. */
  summary: Array<[string, string]>;
  classes: string[];
  /** Images per class in the dataset. */
  classCounts?: number[];
  /** A few labelled images to show, like the notebook's sample grid. */
  samples?: Array<{ path: string; label: string }>;
  models: ReportModel[];
  /** The model whose per-class table, confusion matrix, gallery and calibration are shown. */
  primary: { name: string; metrics: Metrics; split: string };
  gallery?: GalleryItem[];
  timings?: Record<string, number>;
  /** The primary model's calibration step: ECE before and after temperature scaling. */
  calibration?: CalibrationSummary;
  /** "Possible label issues": images flagged (check --labels) or listed, and what was done with them. */
  labelIssues?: LabelIssuesSection;
}

export interface LabelIssuesSection {
  /** One line: how many were left out and why. */
  summary: string;
  items: Array<{ path: string; given?: string; suggested?: string; score?: number; kind?: string; split: string; excluded: boolean }>;
}

export interface ReportFiles {
  html: string;
  pngs: string[];
}

function pct(x: number): string {
  return `${(100 * x).toFixed(2)}%`;
}

const CSS = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;margin:0;color:#1a1a1a;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 10px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;margin:0 0 16px}
section{background:#fff;border:1px solid #e4e4e4;border-radius:6px;padding:14px 18px;margin-bottom:18px}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
th{background:#f4f4f4;position:sticky;top:0}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer;user-select:none}table.sortable th:after{content:" \\2195";color:#aaa}
.kv td:first-child{color:#555;white-space:nowrap}
.flex{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
.scroll{overflow:auto;max-height:640px}
.grid{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;width:112px;font-size:11px;text-align:center}figure img{width:96px;height:96px;object-fit:cover;border-radius:4px;border:1px solid #ddd}
figure.wrong img{border:2px solid #d62728}figcaption{overflow-wrap:anywhere}
.bad{color:#b00}.ok{color:#070}
svg{max-width:100%;height:auto}svg.confusion{max-width:none}
.big{font-size:28px;font-weight:600}.metric{display:inline-block;margin-right:28px}.metric span{display:block;color:#666;font-size:12px}
@media print{body{background:#fff}section{border:none;break-inside:avoid}.scroll{max-height:none;overflow:visible}}
`;

const SORT_JS = `
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
    var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
    var dir=th.dataset.dir==='asc'?'desc':'asc';th.dataset.dir=dir;
    rows.sort(function(a,b){var x=a.cells[i].dataset.v||a.cells[i].textContent,y=b.cells[i].dataset.v||b.cells[i].textContent;
      var nx=parseFloat(x),ny=parseFloat(y);var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return dir==='asc'?c:-c;});
    rows.forEach(function(r){body.appendChild(r);});});});
});`;

function kvTable(rows: Array<[string, string]>): string {
  return `<table class="kv">${rows.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('')}</table>`;
}

function curves(models: ReportModel[]): { loss: string; acc: string; combined: string } | undefined {
  const withHistory = models.filter((m) => m.history?.length);
  if (!withHistory.length) return undefined;
  const series = (key: 'loss' | 'acc', valKey: 'val_loss' | 'val_acc'): Series[] =>
    withHistory.flatMap((m, i) => [
      { name: `${m.name} train`, points: m.history!.map((h) => [h.epoch, h[key]] as [number, number]), color: PALETTE[i % PALETTE.length] },
      { name: `${m.name} val`, points: m.history!.map((h) => [h.epoch, h[valKey]] as [number, number]), color: PALETTE[i % PALETTE.length], dashed: true },
    ]);
  const loss = lineChart(series('loss', 'val_loss'), { title: 'Loss', xLabel: 'epoch', yLabel: 'cross-entropy', integerX: true, yMin: 0 });
  const acc = lineChart(series('acc', 'val_acc'), { title: 'Accuracy', xLabel: 'epoch', yLabel: 'accuracy', integerX: true, yMin: 0, yMax: 1, legend: 'bottom-right' });
  return { loss, acc, combined: sideBySide(loss, acc, 480, 480, 320) };
}

function metricsTable(models: ReportModel[], split: string): string {
  const ms = models.filter((m) => m.test);
  if (!ms.length) return '';
  const row = (label: string, f: (m: Metrics) => string) => `<tr><td>${esc(label)}</td>${ms.map((m) => `<td class="num">${f(m.test!)}</td>`).join('')}</tr>`;
  return `<table><thead><tr><th>${esc(split)}</th>${ms.map((m) => `<th class="num">${esc(m.name)}</th>`).join('')}</tr></thead><tbody>
${row('images', (m) => String(m.n))}
${row('accuracy', (m) => pct(m.accuracy))}
${row(`top-${ms[0]!.test!.topK} accuracy`, (m) => pct(m.top5))}
${row('balanced accuracy', (m) => pct(m.balancedAccuracy))}
${row('log-loss', (m) => m.loss.toFixed(4))}
${row('macro precision / recall / F1', (m) => `${m.macro.precision.toFixed(3)} / ${m.macro.recall.toFixed(3)} / ${m.macro.f1.toFixed(3)}`)}
${row('weighted F1', (m) => m.weighted.f1.toFixed(3))}
${row('expected calibration error', (m) => m.ece.toFixed(4))}
${ms.some((m) => m.seconds !== undefined) ? `<tr><td>wall time</td>${ms.map((m) => `<td class="num">${m.seconds !== undefined ? `${m.seconds.toFixed(1)} s` : ''}</td>`).join('')}</tr>` : ''}
</tbody></table>`;
}

function perClassTable(m: Metrics): string {
  const rows = [...m.perClass].sort((a, b) => a.f1 - b.f1);
  return `<p class="sub">Click a column to sort. Worst F1 first.</p><div class="scroll"><table class="sortable" id="per-class"><thead><tr><th>class</th><th class="num">F1</th><th class="num">precision</th><th class="num">recall</th><th class="num">support</th><th class="num">predicted</th></tr></thead><tbody>
${rows.map((c) => `<tr><td>${esc(c.name)}</td><td class="num" data-v="${c.f1}">${c.f1.toFixed(3)}</td><td class="num" data-v="${c.precision}">${c.precision.toFixed(3)}</td><td class="num" data-v="${c.recall}">${c.recall.toFixed(3)}</td><td class="num">${c.support}</td><td class="num">${c.predicted}</td></tr>`).join('\n')}
</tbody></table></div>`;
}

export async function writeReport(dir: string, r: ReportInput): Promise<ReportFiles> {
  await fs.mkdir(dir, { recursive: true });
  const pngs: string[] = [];
  const png = async (svg: string, name: string) => {
    const file = path.join(dir, name);
    await svgToPng(svg, file);
    pngs.push(file);
  };
  const m = r.primary.metrics;
  const parts: string[] = [];
  parts.push(`<h1>${esc(r.title)}</h1><p class="sub">${esc(r.kind)} report · ${esc(r.createdAt)} · tlearn ${esc(r.version)}</p>`);
  parts.push(`<section id="headline"><div class="metric"><span>${esc(r.primary.split)} accuracy (${esc(r.primary.name)})</span><b class="big">${pct(m.accuracy)}</b></div><div class="metric"><span>top-${m.topK}</span><b class="big">${pct(m.top5)}</b></div><div class="metric"><span>balanced accuracy</span><b class="big">${pct(m.balancedAccuracy)}</b></div><div class="metric"><span>${esc(r.primary.split)} images</span><b class="big">${m.n}</b></div></section>`);
  parts.push(`<h2>Run summary</h2><section id="summary">${kvTable(r.summary)}${r.timings ? `<h3>Timings</h3>${kvTable(Object.entries(r.timings).map(([k, v]) => [k, `${v.toFixed(2)} s`]))}` : ''}</section>`);

  if (r.classCounts || r.samples?.length) {
    let body = '';
    if (r.classCounts) {
      const svg = barChart(r.classes, r.classCounts, { title: `Images per class (${r.classes.length} classes)`, yLabel: 'images' });
      body += svg;
      await png(svg, 'class-counts.png');
    }
    if (r.samples?.length) {
      const thumbs = await thumbnails(r.samples.map((s) => s.path));
      body += `<h3>Sample images</h3><div class="grid">${r.samples.map((s, i) => (thumbs[i] ? `<figure><img src="${thumbs[i]}" alt="${esc(s.label)}"><figcaption>${esc(s.label)}</figcaption></figure>` : '')).join('')}</div>`;
    }
    parts.push(`<h2>Dataset</h2><section id="dataset">${body}</section>`);
  }

  const c = curves(r.models);
  if (c) {
    parts.push(`<h2>Training curves</h2><section id="curves"><div class="flex">${c.loss}${c.acc}</div><p class="sub">Solid: training (running average over the epoch); dashed: validation.</p></section>`);
    await png(c.combined, 'curves.png');
  }

  parts.push(`<h2>${esc(r.primary.split[0]!.toUpperCase() + r.primary.split.slice(1))} metrics</h2><section id="metrics">${metricsTable(r.models.some((x) => x.test) ? r.models : [{ name: r.primary.name, test: m }], r.primary.split)}</section>`);
  parts.push(`<h2>Per-class results (${esc(r.primary.name)})</h2><section id="classes">${perClassTable(m)}</section>`);

  const heat = confusionHeatmap(r.classes, m.confusion);
  await png(heat, 'confusion.png');
  const top = m.mostConfused.slice(0, 20);
  const topList = top.length
    ? `<table><thead><tr><th>true</th><th>predicted as</th><th class="num">count</th></tr></thead><tbody>${top.map((p) => `<tr><td>${esc(p.true)}</td><td>${esc(p.predicted)}</td><td class="num">${p.count}</td></tr>`).join('')}</tbody></table>`
    : '<p>No confusions.</p>';
  parts.push(`<h2>Confusion matrix (${esc(r.primary.split)})</h2><section id="confusion"><div class="flex"><div style="overflow-x:auto;max-width:100%">${heat}</div><div><h3>Top confusions</h3>${topList}</div></div><p class="sub">Hover a cell for its counts. Colour is the share of the true class's images (square-root scale): blue on the diagonal, red off it.</p></section>`);

  if (r.gallery) {
    let body = '<p>No misclassified images.</p>';
    if (r.gallery.length) {
      const thumbs = await thumbnails(r.gallery.map((g) => g.path));
      body = `<div class="grid">${r.gallery
        .map(
          (g, i) =>
            `<figure class="wrong"><img src="${thumbs[i] ?? ''}" alt="${esc(g.trueLabel)}"><figcaption><b>${esc(g.predicted)}</b> ${pct(g.probability)}<br><span class="ok">true: ${esc(g.trueLabel)}</span> (${pct(g.trueProbability)})<br><span style="color:#888">${esc(path.basename(g.path))}</span></figcaption></figure>`,
        )
        .join('')}</div>`;
    }
    parts.push(`<h2>Most confidently wrong (${esc(r.primary.split)})</h2><section id="gallery"><p class="sub">The misclassified images with the highest predicted probability: predicted class and probability, then the true class and the probability it got.</p>${body}</section>`);
  }

  if (r.labelIssues) parts.push(await labelIssuesHtml(r.labelIssues));

  const rel = reliabilityDiagram(m.reliability, m.ece);
  await png(rel, 'reliability.png');
  parts.push(`<h2>Calibration</h2><section id="calibration"><div class="flex">${rel}<div style="max-width:460px"><p>Each bar is the accuracy of the ${esc(r.primary.split)} images whose top probability falls in that range; the red line is their mean top probability. A well-calibrated model's bars reach the diagonal. Expected calibration error: ${m.ece.toFixed(4)}.</p>${calibrationNote(r.calibration)}</div></div></section>`);

  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(r.title)}</title><style>${CSS}</style></head><body><main>${parts.join('\n')}<p class="sub">Written by tlearn ${esc(r.version)}. This file is self-contained: it needs no network and no other files.</p></main><script>${SORT_JS}</script></body></html>`;
  const file = path.join(dir, 'report.html');
  await writeFileAtomic(file, html);
  return { html: file, pngs };
}

/** The "Possible label issues" section: thumbnails with given → suggested and the score (at most 120 shown). */
async function labelIssuesHtml(s: LabelIssuesSection): Promise<string> {
  const shown = s.items.slice(0, 120);
  const thumbs = await thumbnails(shown.map((i) => i.path));
  const fig = (i: LabelIssuesSection['items'][number], k: number) =>
    `<figure class="wrong"><img src="${thumbs[k] ?? ''}" alt="${esc(`${i.given ?? ''} ${path.basename(i.path)}`)}"><figcaption>${i.given !== undefined ? `${esc(i.given)} → <b>${esc(i.suggested || '?')}</b>` : ''}${i.score !== undefined ? ` ${i.score < 1e-3 ? i.score.toExponential(1) : i.score.toFixed(3)}` : ''}${i.kind && i.kind !== 'label' ? `<br>${esc(i.kind)}` : ''}<br><span style="color:#888">${esc(i.split)}${i.excluded ? ', left out' : ', kept'} · ${esc(path.basename(i.path))}</span></figcaption></figure>`;
  const more = s.items.length > shown.length ? `<p class="sub">and ${s.items.length - shown.length} more (metrics.json lists them all).</p>` : '';
  return `<h2>Possible label issues</h2><section id="label-issues"><p>${esc(s.summary)}.</p><p class="sub">Each image shows its folder's label → the label the out-of-fold models suggest, and the label-quality score (lower is more likely wrong). Images in the test split are never left out.</p><div class="grid">${shown.map(fig).join('')}</div>${more}</section>`;
}

/** Temperature scaling before/after, under the reliability diagram. */
function calibrationNote(c: CalibrationSummary | undefined): string {
  if (!c) return '';
  const rows: Array<[string, string]> = [
    ['validation ECE', `${c.val.before.ece.toFixed(4)} → ${c.val.after.ece.toFixed(4)}`],
    ['validation log-loss', `${c.val.before.loss.toFixed(4)} → ${c.val.after.loss.toFixed(4)}`],
    ['test ECE', `${c.test.before.ece.toFixed(4)} → ${c.test.after.ece.toFixed(4)}`],
    ['test log-loss', `${c.test.before.loss.toFixed(4)} → ${c.test.after.loss.toFixed(4)}`],
  ];
  if (c.method !== 'temperature') return `<p id="temperature">No temperature scaling: ${esc(c.note ?? '')}.</p>`;
  return `<p id="temperature">Temperature scaling: the logits are divided by T = ${c.temperature.toFixed(3)}, fitted on the validation split (lowest log-loss) and folded into the final layer (${esc(c.layer ?? '')}), so the shipped model outputs these probabilities. It never changes the predicted class. Before → after (the test numbers are without test-time augmentation):</p>${kvTable(rows)}${c.note ? `<p class="sub">${esc(c.note)}</p>` : ''}`;
}

/** The misclassified samples with the highest predicted probability. */
export function topLossGallery(probs: Float32Array, labels: ArrayLike<number>, paths: string[], classes: string[], k = 24): GalleryItem[] {
  const K = classes.length;
  const wrong: GalleryItem[] = [];
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let c = 1; c < K; c++) if (probs[i * K + c]! > probs[i * K + best]!) best = c;
    const y = labels[i]!;
    if (best !== y) wrong.push({ path: paths[i]!, trueLabel: classes[y]!, predicted: classes[best]!, probability: probs[i * K + best]!, trueProbability: probs[i * K + y]! });
  }
  return wrong.sort((a, b) => b.probability - a.probability).slice(0, k);
}

/** test-predictions.csv: one row per image with the true and predicted class and both probabilities. */
export function predictionsCsv(probs: Float32Array, labels: ArrayLike<number>, paths: string[], classes: string[]): string {
  const K = classes.length;
  const q = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const lines = ['path,true,predicted,probability,true_probability'];
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let c = 1; c < K; c++) if (probs[i * K + c]! > probs[i * K + best]!) best = c;
    lines.push([q(paths[i]!), q(classes[labels[i]!]!), q(classes[best]!), probs[i * K + best]!.toFixed(6), probs[i * K + labels[i]!]!.toFixed(6)].join(','));
  }
  return `${lines.join('\n')}\n`;
}
