// Training curves as SVG: one chart per measure (loss, accuracy), training and validation lines, one point per
// epoch, drawn again as each epoch ends. Sizes follow the viewBox, so a chart fits any width.
const NS = 'http://www.w3.org/2000/svg';

function svgEl(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

const fmt = (v, pct) => (pct ? `${Math.round(v * 100)}%` : v.toFixed(v >= 10 ? 0 : 2));

/**
 * Draws `series` ([{name, values: (number|null)[], dashed?}]) into `svg`. `pct`: values are fractions shown as
 * percentages on a 0-100% axis. `marks`: [{at: index, text}] vertical lines (e.g. where fine-tuning starts).
 */
export function drawChart(svg, { title, series, pct = false, marks = [] }) {
  const W = 480;
  const H = 220;
  const pad = { l: 46, r: 12, t: 26, b: 30 };
  svg.replaceChildren();
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('preserveAspectRatio', 'xMidYMid meet');
  const n = Math.max(1, ...series.map((s) => s.values.length));
  const all = series.flatMap((s) => s.values.filter((v) => v !== null && Number.isFinite(v)));
  let lo = pct ? 0 : Math.min(0, ...all);
  let hi = pct ? 1 : Math.max(1e-6, ...all) * 1.08;
  if (!all.length) [lo, hi] = [0, 1];
  const x = (i) => pad.l + (n === 1 ? (W - pad.l - pad.r) / 2 : (i * (W - pad.l - pad.r)) / (n - 1));
  const y = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * (H - pad.t - pad.b);
  svg.append(svgEl('text', { x: pad.l, y: 16, class: 'chart-title' }, title));
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    svg.append(svgEl('line', { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: 'grid-line' }));
    svg.append(svgEl('text', { x: pad.l - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, fmt(v, pct)));
  }
  svg.append(svgEl('text', { x: (pad.l + W - pad.r) / 2, y: H - 6, class: 'axis', 'text-anchor': 'middle' }, n > 1 ? `epoch 1 to ${n}` : 'epoch 1'));
  for (const m of marks) {
    if (m.at <= 0 || m.at >= n) continue;
    const mx = (x(m.at - 1) + x(m.at)) / 2;
    svg.append(svgEl('line', { x1: mx, x2: mx, y1: pad.t, y2: H - pad.b, class: 'mark-line' }));
    svg.append(svgEl('text', { x: mx + 4, y: pad.t + 12, class: 'axis' }, m.text));
  }
  series.forEach((s, si) => {
    const pts = s.values.map((v, i) => (v === null || !Number.isFinite(v) ? null : [x(i), y(v)]));
    let d = '';
    let pen = false;
    for (const p of pts) {
      if (!p) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${p[0].toFixed(1)},${p[1].toFixed(1)}`;
      pen = true;
    }
    if (d) svg.append(svgEl('path', { d, class: `series s${si}${s.dashed ? ' dashed' : ''}` }));
    const last = [...pts.entries()].reverse().find(([, p]) => p);
    if (last) svg.append(svgEl('circle', { cx: last[1][0], cy: last[1][1], r: 3.5, class: `dot s${si}` }));
  });
  // legend
  let lx = W - pad.r;
  for (let si = series.length - 1; si >= 0; si--) {
    const s = series[si];
    const label = svgEl('text', { x: lx, y: 16, class: 'legend', 'text-anchor': 'end' }, s.name);
    svg.append(label);
    lx -= s.name.length * 6.4 + 8;
    svg.append(svgEl('line', { x1: lx - 18, x2: lx - 2, y1: 12, y2: 12, class: `series s${si}${s.dashed ? ' dashed' : ''}` }));
    lx -= 28;
  }
}
