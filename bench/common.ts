/** What the bench sections share: paths into ../shared, the result rows, logging and child-process timing. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SHARED = path.resolve(ROOT, '..', 'shared');
export const CALTECH = path.join(SHARED, 'datasets/caltech101/101_ObjectCategories');
export const MOBILENET = path.join(SHARED, 'models/mobilenet_v2_0.35_224_imagenet_notop');
export const EXCLUDE = 'BACKGROUND_Google,Motorbikes,airplanes,Faces_easy,Faces';
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

export const log = (s: string) => process.stderr.write(`${s}\n`);

/** Runs `fn` under TLEARN_DECODER=<decoder> (restored afterwards). */
export async function withDecoder<T>(decoder: 'legacy' | 'fast', fn: () => Promise<T>): Promise<T> {
  const before = process.env.TLEARN_DECODER;
  if (decoder === 'legacy') process.env.TLEARN_DECODER = 'legacy';
  else delete process.env.TLEARN_DECODER;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.TLEARN_DECODER;
    else process.env.TLEARN_DECODER = before;
  }
}

/** CPU time of this process (all threads) per item, in milliseconds. */
export function coreMs(start: NodeJS.CpuUsage, items: number): number {
  const c = process.cpuUsage(start);
  return (c.user + c.system) / 1000 / items;
}

/** Runs `node args...` and measures its wall time, peak RSS and CPU seconds (GNU time, when installed). */
export function timed(args: string[], env: Record<string, string>): Promise<{ seconds: number; rssMB: number | null; cpuSeconds: number | null; stdout: string }> {
  const gnuTime = existsSync('/usr/bin/time');
  const cmd = gnuTime ? '/usr/bin/time' : process.execPath;
  const full = gnuTime ? ['-f', '__RSS_KB=%M __CPU=%U+%S', process.execPath, ...args] : args;
  const t = performance.now();
  return new Promise((resolve, reject) => {
    execFile(cmd, full, { env: { ...process.env, ...env }, maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${args.join(' ')} failed: ${stderr.slice(-2000)}`));
      const m = /__RSS_KB=(\d+)/.exec(stderr);
      const c = /__CPU=([\d.]+)\+([\d.]+)/.exec(stderr);
      resolve({ seconds: (performance.now() - t) / 1000, rssMB: m ? Number(m[1]) / 1024 : null, cpuSeconds: c ? Number(c[1]) + Number(c[2]) : null, stdout });
    });
  });
}
