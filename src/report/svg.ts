/**
 * Small SVG charts for reports and figures: line charts, bar charts, a confusion-matrix heatmap and a
 * reliability diagram. Pure string builders, no dependencies, fonts from the generic sans-serif family.
 */
export function esc(s: string | number): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const FONT = `font-family="DejaVu Sans, Helvetica, Arial, sans-serif"`;
export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

function svgOpen(w: number, h: number, extra = ''): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" ${FONT} font-size="12" ${extra}><rect width="${w}" height="${h}" fill="#fff"/>`;
}

function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toFixed(10));
  return out;
}

function fmt(v: number): string {
  if (Math.abs(v) >= 100 || Number.isInteger(v)) return String(Math.round(v * 100) / 100);
  return v.toFixed(Math.abs(v) < 1 ? 2 : 1);
}

export interface Series {
  name: string;
  /** [x, y] points; y may be NaN (skipped). */
  points: Array<[number, number]>;
  color?: string;
  dashed?: boolean;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  yMin?: number;
  yMax?: number;
  /** Integer x ticks (epochs). */
  integerX?: boolean;
  /** Where the legend goes inside the plot (default top-right). */
  legend?: 'top-right' | 'bottom-right';
}

/** A line chart with axes, ticks, grid and a legend. */
export function lineChart(series: Series[], o: LineChartOptions): string {
  const W = o.width ?? 480;
  const H = o.height ?? 320;
  const m = { l: 56, r: 16, t: 32, b: 44 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const pts = series.flatMap((s) => s.points.filter(([, y]) => Number.isFinite(y)));
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs, o.integerX ? 1 : 0);
  const x1 = Math.max(...xs, x0 + 1);
  let y0 = o.yMin ?? Math.min(...ys);
  let y1 = o.yMax ?? Math.max(...ys);
  if (!Number.isFinite(y0) || !Number.isFinite(y1)) [y0, y1] = [0, 1];
  if (y1 - y0 < 1e-9) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  if (o.yMin === undefined) y0 -= (y1 - y0) * 0.05;
  if (o.yMax === undefined) y1 += (y1 - y0) * 0.05;
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => m.t + ph - ((y - y0) / (y1 - y0)) * ph;
  let s = svgOpen(W, H);
  s += `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(o.title)}</text>`;
  for (const t of niceTicks(y0, y1)) {
    s += `<line x1="${m.l}" x2="${m.l + pw}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e5e5e5"/>`;
    s += `<text x="${m.l - 6}" y="${sy(t) + 4}" text-anchor="end" font-size="11">${fmt(t)}</text>`;
  }
  const xt = o.integerX ? niceTicks(x0, x1, Math.min(10, x1 - x0)).filter((t) => Number.isInteger(t)) : niceTicks(x0, x1);
  for (const t of xt) s += `<text x="${sx(t)}" y="${m.t + ph + 16}" text-anchor="middle" font-size="11">${fmt(t)}</text>`;
  s += `<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`;
  s += `<text x="${m.l + pw / 2}" y="${H - 8}" text-anchor="middle">${esc(o.xLabel)}</text>`;
  s += `<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`;
  series.forEach((se, i) => {
    const color = se.color ?? PALETTE[i % PALETTE.length]!;
    const valid = se.points.filter(([, y]) => Number.isFinite(y));
    if (!valid.length) return;
    const d = valid.map(([x, y], k) => `${k ? 'L' : 'M'}${sx(x).toFixed(1)} ${sy(y).toFixed(1)}`).join(' ');
    s += `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${se.dashed ? ' stroke-dasharray="6 4"' : ''}/>`;
    for (const [x, y] of valid) s += `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${color}"><title>${esc(se.name)}: ${fmt(x)}, ${y.toFixed(4)}</title></circle>`;
  });
  // legend inside the plot, with a white backdrop
  const lx = m.l + pw - 8;
  const top = o.legend === 'bottom-right' ? m.t + ph - 8 - series.length * 16 : m.t + 4;
  s += `<rect x="${lx - 156}" y="${top}" width="152" height="${series.length * 16 + 6}" fill="#fff" opacity="0.85"/>`;
  series.forEach((se, i) => {
    const color = se.color ?? PALETTE[i % PALETTE.length]!;
    const ly = top + 16 + i * 16;
    s += `<line x1="${lx - 150}" x2="${lx - 126}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"${se.dashed ? ' stroke-dasharray="6 4"' : ''}/>`;
    s += `<text x="${lx - 120}" y="${ly}" font-size="11">${esc(se.name)}</text>`;
  });
  return `${s}</svg>`;
}

/** Two charts side by side in one SVG (e.g. loss left, accuracy right). */
export function sideBySide(left: string, right: string, leftWidth: number, rightWidth: number, height: number): string {
  const strip = (svg: string) => svg.replace(/^<svg[^>]*>/, '').replace(/<\/svg>$/, '');
  return `${svgOpen(leftWidth + rightWidth, height)}<g>${strip(left)}</g><g transform="translate(${leftWidth} 0)">${strip(right)}</g></svg>`;
}

/** Vertical bars with one label per bar (rotated when crowded). */
export function barChart(labels: string[], values: number[], o: { title: string; yLabel: string; width?: number; height?: number; color?: string }): string {
  const n = labels.length;
  const W = o.width ?? Math.max(480, Math.min(1100, 60 + n * 12));
  const crowded = n > 12;
  const labelSpace = crowded ? Math.min(130, 8 + 5.5 * Math.max(...labels.map((l) => l.length))) : 30;
  const H = o.height ?? 260 + labelSpace;
  const m = { l: 50, r: 10, t: 30, b: labelSpace + 10 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const vmax = Math.max(...values, 1);
  const bw = pw / n;
  let s = svgOpen(W, H);
  s += `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(o.title)}</text>`;
  for (const t of niceTicks(0, vmax)) {
    const y = m.t + ph - (t / vmax) * ph;
    s += `<line x1="${m.l}" x2="${m.l + pw}" y1="${y}" y2="${y}" stroke="#eee"/><text x="${m.l - 5}" y="${y + 4}" text-anchor="end" font-size="10">${fmt(t)}</text>`;
  }
  s += `<text transform="translate(12 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle" font-size="11">${esc(o.yLabel)}</text>`;
  labels.forEach((label, i) => {
    const h = (values[i]! / vmax) * ph;
    const x = m.l + i * bw;
    s += `<rect x="${(x + bw * 0.1).toFixed(1)}" y="${(m.t + ph - h).toFixed(1)}" width="${(bw * 0.8).toFixed(1)}" height="${h.toFixed(1)}" fill="${o.color ?? PALETTE[0]}"><title>${esc(label)}: ${values[i]}</title></rect>`;
    const fs = crowded ? Math.min(9, Math.max(6, bw * 0.9)) : 11;
    if (crowded) s += `<text transform="translate(${(x + bw / 2 + fs / 3).toFixed(1)} ${m.t + ph + 4}) rotate(-90)" text-anchor="end" font-size="${fs.toFixed(1)}">${esc(label)}</text>`;
    else s += `<text x="${(x + bw / 2).toFixed(1)}" y="${m.t + ph + 14}" text-anchor="middle" font-size="${fs}">${esc(label)}</text>`;
  });
  s += `<line x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}" stroke="#444"/>`;
  return `${s}</svg>`;
}

/** Colour for a value in [0, 1] (white → dark blue). */
function blues(v: number): string {
  const t = Math.max(0, Math.min(1, v));
  const r = Math.round(247 - t * (247 - 8));
  const g = Math.round(251 - t * (251 - 48));
  const b = Math.round(255 - t * (255 - 107));
  return `rgb(${r},${g},${b})`;
}

/**
 * Confusion matrix heatmap: rows = true class, columns = predicted; colour = row-normalised rate (square-root
 * scaled so that rare confusions stay visible); every cell has a hover title with the counts.
 */
export function confusionHeatmap(names: string[], matrix: number[][], o: { title?: string; cell?: number } = {}): string {
  const n = names.length;
  const cell = o.cell ?? (n <= 10 ? 36 : n <= 30 ? 16 : 8);
  const fs = Math.max(5, Math.min(12, cell * 0.9));
  const labelW = Math.min(160, 10 + fs * 0.6 * Math.max(...names.map((s) => s.length)));
  const m = { l: labelW + 18, t: labelW + 36, r: 12, b: 12 };
  const W = Math.max(m.l + n * cell + m.r, 470);
  const H = m.t + n * cell + m.b;
  let s = svgOpen(W, H, 'class="confusion"');
  s += `<text x="6" y="16" font-size="14" font-weight="bold">${esc(o.title ?? 'Confusion matrix (rows: true class, columns: predicted)')}</text>`;
  const rowSums = matrix.map((r) => r.reduce((a, b) => a + b, 0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const c = matrix[i]![j]!;
      const rate = rowSums[i] ? c / rowSums[i]! : 0;
      const fill = c === 0 ? '#fff' : i === j ? blues(Math.sqrt(rate)) : `rgb(${Math.round(255 - Math.sqrt(rate) * 120)},${Math.round(235 - Math.sqrt(rate) * 200)},${Math.round(235 - Math.sqrt(rate) * 200)})`;
      s += `<rect class="cm-cell" data-true="${i}" data-pred="${j}" x="${m.l + j * cell}" y="${m.t + i * cell}" width="${cell}" height="${cell}" fill="${fill}" stroke="#f2f2f2" stroke-width="0.5"><title>true ${esc(names[i]!)} → predicted ${esc(names[j]!)}: ${c} of ${rowSums[i]}</title></rect>`;
      if (cell >= 24 && c > 0) s += `<text x="${m.l + j * cell + cell / 2}" y="${m.t + i * cell + cell / 2 + 4}" text-anchor="middle" font-size="11" fill="${i === j && rate > 0.5 ? '#fff' : '#000'}">${c}</text>`;
    }
    s += `<text x="${m.l - 4}" y="${m.t + i * cell + cell / 2 + fs / 3}" text-anchor="end" font-size="${fs}">${esc(names[i]!)}</text>`;
    s += `<text transform="translate(${m.l + i * cell + cell / 2 + fs / 3} ${m.t - 4}) rotate(-90)" font-size="${fs}">${esc(names[i]!)}</text>`;
  }
  s += `<rect x="${m.l}" y="${m.t}" width="${n * cell}" height="${n * cell}" fill="none" stroke="#444"/>`;
  s += `<text x="6" y="${m.t - 6}" font-size="10" fill="#555">true \u2193  predicted \u2192</text>`;
  return `${s}</svg>`;
}

export interface BinLike {
  lower: number;
  upper: number;
  count: number;
  confidence: number;
  accuracy: number;
}

/** Reliability diagram: accuracy per confidence bin against the diagonal, with sample counts. */
export function reliabilityDiagram(bins: BinLike[], ece: number, o: { width?: number; height?: number } = {}): string {
  const W = o.width ?? 420;
  const H = o.height ?? 380;
  const m = { l: 52, r: 14, t: 34, b: 46 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const sx = (x: number) => m.l + x * pw;
  const sy = (y: number) => m.t + ph - y * ph;
  let s = svgOpen(W, H);
  s += `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">Reliability (ECE ${ece.toFixed(3)})</text>`;
  for (const t of [0, 0.2, 0.4, 0.6, 0.8, 1]) {
    s += `<line x1="${m.l}" x2="${m.l + pw}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/>`;
    s += `<text x="${m.l - 5}" y="${sy(t) + 4}" text-anchor="end" font-size="10">${t}</text><text x="${sx(t)}" y="${m.t + ph + 14}" text-anchor="middle" font-size="10">${t}</text>`;
  }
  for (const b of bins) {
    if (!b.count) continue;
    const x = sx(b.lower);
    const w = sx(b.upper) - x;
    s += `<rect x="${x + 1}" y="${sy(b.accuracy)}" width="${w - 2}" height="${sy(0) - sy(b.accuracy)}" fill="${PALETTE[0]}" opacity="0.8"><title>confidence ${b.lower.toFixed(2)}–${b.upper.toFixed(2)}: ${b.count} samples, accuracy ${b.accuracy.toFixed(3)}, mean confidence ${b.confidence.toFixed(3)}</title></rect>`;
    s += `<line x1="${x + 1}" x2="${x + w - 1}" y1="${sy(b.confidence)}" y2="${sy(b.confidence)}" stroke="${PALETTE[1]}" stroke-width="2"/>`;
  }
  s += `<line x1="${sx(0)}" y1="${sy(0)}" x2="${sx(1)}" y2="${sy(1)}" stroke="#888" stroke-dasharray="4 3"/>`;
  s += `<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`;
  s += `<text x="${m.l + pw / 2}" y="${H - 10}" text-anchor="middle">confidence (max probability)</text>`;
  s += `<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">accuracy</text>`;
  s += `<rect x="${m.l + 8}" y="${m.t + 8}" width="10" height="10" fill="${PALETTE[0]}"/><text x="${m.l + 22}" y="${m.t + 17}" font-size="11">accuracy in bin</text>`;
  s += `<line x1="${m.l + 8}" x2="${m.l + 18}" y1="${m.t + 28}" y2="${m.t + 28}" stroke="${PALETTE[1]}" stroke-width="2"/><text x="${m.l + 22}" y="${m.t + 32}" font-size="11">mean confidence</text>`;
  return `${s}</svg>`;
}
