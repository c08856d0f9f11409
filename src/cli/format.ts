/** Human-readable tables for the terminal. */
import type { Metrics } from '../evaluate/metrics.js';
import type { CalibrationSummary } from '../engine/calibration.js';

export function pct(x: number): string {
  return `${(100 * x).toFixed(2)}%`;
}

export function table(rows: string[][], align: Array<'l' | 'r'> = []): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r) => r.map((cell, c) => (align[c] === 'r' ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd())
    .join('\n');
}

export function metricsTable(parts: Array<[string, Metrics]>): string {
  const rows: string[][] = [['', ...parts.map(([name]) => name)]];
  const add = (label: string, f: (m: Metrics) => string) => rows.push([label, ...parts.map(([, m]) => f(m))]);
  add('images', (m) => String(m.n));
  add('accuracy', (m) => m.accuracy.toFixed(4));
  add('loss', (m) => m.loss.toFixed(4));
  add(`top-${parts[0]?.[1].topK ?? 5} accuracy`, (m) => m.top5.toFixed(4));
  add('balanced accuracy', (m) => m.balancedAccuracy.toFixed(4));
  add('macro F1', (m) => m.macro.f1.toFixed(4));
  add('weighted F1', (m) => m.weighted.f1.toFixed(4));
  add('ECE', (m) => m.ece.toFixed(4));
  return table(rows, ['l', ...parts.map(() => 'r' as const)]);
}

export function confusedLines(m: Metrics, k = 5): string[] {
  return m.mostConfused.slice(0, k).map((p) => `  ${p.true} → ${p.predicted}: ${p.count}`);
}

/** One line on the calibration step (and a blank line), or nothing. */
export function calibrationLines(c: CalibrationSummary | undefined): string[] {
  if (!c) return [];
  if (c.method !== 'temperature') return [`calibration: none (${c.note})`, ''];
  return [`calibration: temperature ${c.temperature.toFixed(3)} fitted on val; test ECE ${c.test.before.ece.toFixed(4)} → ${c.test.after.ece.toFixed(4)}, test loss ${c.test.before.loss.toFixed(4)} → ${c.test.after.loss.toFixed(4)}`, ''];
}
