/** What npm run bench's sections share beyond bench/report.ts: the result rows, the JSON numbers, decoder switching. */
import path from 'node:path';
import { ROOT } from './report.js';

export { CALTECH, EXCLUDE, log, MOBILENET, ROOT, timed } from './report.js';
export const TLEARN = path.join(ROOT, 'bin/tlearn.js');

export interface Row {
  what: string;
  value: string;
  note?: string;
  /** The bench section that measured it (set by run.ts). */
  section?: string;
}

export const rows: Row[] = [];
/** The numbers `--json` prints. */
export const results: Record<string, number | string | null> = {};

/** CPU time of this process (all threads) per item, in milliseconds. */
export function coreMs(start: NodeJS.CpuUsage, items: number): number {
  const c = process.cpuUsage(start);
  return (c.user + c.system) / 1000 / items;
}
