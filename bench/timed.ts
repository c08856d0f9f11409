/** Runs a node script as a child process, timing it and reading its peak RSS (GNU time's %M where available). */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface TimedRun {
  seconds: number;
  rssMB: number | null;
  stdout: string;
}

export function timed(args: string[], env: Record<string, string>): Promise<TimedRun> {
  const gnuTime = existsSync('/usr/bin/time');
  const cmd = gnuTime ? '/usr/bin/time' : process.execPath;
  const full = gnuTime ? ['-f', '__RSS_KB=%M', process.execPath, ...args] : args;
  const t = performance.now();
  return new Promise((resolve, reject) => {
    execFile(cmd, full, { env: { ...process.env, ...env }, maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${args.join(' ')} failed: ${stderr.slice(-2000)}`));
      const m = /__RSS_KB=(\d+)/.exec(stderr);
      resolve({ seconds: (performance.now() - t) / 1000, rssMB: m ? Number(m[1]) / 1024 : null, stdout });
    });
  });
}
