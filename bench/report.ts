/** What the bench scripts share: where ../shared's data is, the machine in words, timed child runs, and writing BENCHMARKS.md. */
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SHARED = path.resolve(ROOT, '..', 'shared');
export const CALTECH = path.join(SHARED, 'datasets/caltech101/101_ObjectCategories');
export const MOBILENET = path.join(SHARED, 'models/mobilenet_v2_0.35_224_imagenet_notop');
export const EXCLUDE = 'BACKGROUND_Google,Motorbikes,airplanes,Faces_easy,Faces';

export const log = (s: string) => process.stderr.write(`${s}\n`);

export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${cpu}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`;
}

/** Replaces what is between <!-- name:start --> and <!-- name:end --> in BENCHMARKS.md (appends the markers if absent). */
export async function writeBenchSection(name: string, body: string): Promise<void> {
  const file = path.join(ROOT, 'BENCHMARKS.md');
  const old = existsSync(file) ? await fs.readFile(file, 'utf8') : '# Benchmarks\n';
  const section = `<!-- ${name}:start -->\n${body}\n<!-- ${name}:end -->`;
  const re = new RegExp(`<!-- ${name}:start -->[\\s\\S]*<!-- ${name}:end -->`);
  await fs.writeFile(file, re.test(old) ? old.replace(re, section) : `${old.trimEnd()}\n\n${section}\n`);
  log(`updated ${file}`);
}

/** Runs a node script as a child process, timing it and reading its peak RSS and CPU time (GNU time's %M, %U, %S where available). */
export interface TimedRun {
  seconds: number;
  rssMB: number | null;
  /** User + system CPU seconds of the child. */
  cpuSeconds: number | null;
  stdout: string;
}

export function timed(args: string[], env: Record<string, string>): Promise<TimedRun> {
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
