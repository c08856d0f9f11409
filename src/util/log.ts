/** Logging to stderr (stdout is kept for results such as --json), with a progress display. */
export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  /**
   * A progress reporter for `total` items (unit 'B': bytes, shown in MB; total 0: unknown). `start` items are
   * already done (a resumed download): they count towards the bar but not the rate.
   */
  progress(label: string, total: number, unit?: string, start?: number): Progress;
}

export interface Progress {
  tick(n?: number): void;
  done(): void;
}

function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
}

function fmtBytes(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`;
}

class StderrProgress implements Progress {
  private done_: number;
  private readonly start = performance.now();
  private lastPrint = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit: string,
    private readonly tty: boolean,
    private readonly write: (s: string) => void,
    private readonly base = 0,
  ) {
    this.done_ = base;
  }

  private counts(rate: number): { of: string; rate: string } {
    if (this.unit !== 'B') return { of: `${this.done_}/${this.total}`, rate: `${rate.toFixed(0)} ${this.unit}/s` };
    return { of: this.total ? `${fmtBytes(this.done_)} of ${fmtBytes(this.total)}` : fmtBytes(this.done_), rate: `${fmtBytes(rate)}/s` };
  }

  private line(): string {
    const el = (performance.now() - this.start) / 1000;
    const rate = el > 0 ? (this.done_ - this.base) / el : 0;
    const eta = rate > 0 && this.total ? (this.total - this.done_) / rate : Infinity;
    const pct = this.total ? (100 * this.done_) / this.total : 0;
    const c = this.counts(rate);
    if (!this.tty) return `${this.label}: ${c.of}${this.total ? ` (${pct.toFixed(0)}%)` : ''} ${c.rate}, ETA ${fmtDuration(eta)}`;
    const width = 24;
    const filled = Math.min(width, Math.round((width * pct) / 100));
    return `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${c.of} ${c.rate} ETA ${fmtDuration(eta)}`;
  }

  tick(n = 1): void {
    this.done_ += n;
    const now = performance.now();
    const every = this.tty ? 100 : 5000;
    if (now - this.lastPrint < every && (this.done_ < this.total || !this.total)) return;
    this.lastPrint = now;
    if (this.tty) this.write(`\r${this.line()}\x1b[K`);
    else this.write(`${this.line()}\n`);
  }

  done(): void {
    const el = (performance.now() - this.start) / 1000;
    const rate = el > 0 ? (this.done_ - this.base) / el : 0;
    const c = this.counts(rate);
    const msg = `${this.label}: ${this.unit === 'B' ? fmtBytes(this.done_) : c.of} in ${el.toFixed(1)}s (${c.rate})`;
    this.write(this.tty ? `\r${msg}\x1b[K\n` : `${msg}\n`);
  }
}

export function createLogger(opts: { quiet?: boolean; stream?: NodeJS.WriteStream } = {}): Logger {
  const stream = opts.stream ?? process.stderr;
  const write = (s: string) => {
    if (!opts.quiet) stream.write(s);
  };
  return {
    info: (m) => write(`${m}\n`),
    warn: (m) => write(`warning: ${m}\n`),
    progress: (label, total, unit = 'img', start = 0) => new StderrProgress(label, total, unit, Boolean(stream.isTTY), write, start),
  };
}

export const silentLogger: Logger = {
  info: () => {},
  warn: () => {},
  progress: () => ({ tick: () => {}, done: () => {} }),
};
