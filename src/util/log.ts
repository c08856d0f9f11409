/** Logging to stderr (stdout is kept for results such as --json), with a progress display. */
export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  /** A progress reporter for `total` items. */
  progress(label: string, total: number, unit?: string): Progress;
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

class StderrProgress implements Progress {
  private done_ = 0;
  private readonly start = performance.now();
  private lastPrint = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit: string,
    private readonly tty: boolean,
    private readonly write: (s: string) => void,
  ) {}

  private line(): string {
    const el = (performance.now() - this.start) / 1000;
    const rate = el > 0 ? this.done_ / el : 0;
    const eta = rate > 0 ? (this.total - this.done_) / rate : Infinity;
    const pct = this.total ? (100 * this.done_) / this.total : 100;
    if (!this.tty) return `${this.label}: ${this.done_}/${this.total} (${pct.toFixed(0)}%) ${rate.toFixed(0)} ${this.unit}/s, ETA ${fmtDuration(eta)}`;
    const width = 24;
    const filled = Math.round((width * pct) / 100);
    return `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.done_}/${this.total} ${rate.toFixed(0)} ${this.unit}/s ETA ${fmtDuration(eta)}`;
  }

  tick(n = 1): void {
    this.done_ += n;
    const now = performance.now();
    const every = this.tty ? 100 : 5000;
    if (now - this.lastPrint < every && this.done_ < this.total) return;
    this.lastPrint = now;
    if (this.tty) this.write(`\r${this.line()}\x1b[K`);
    else this.write(`${this.line()}\n`);
  }

  done(): void {
    const el = (performance.now() - this.start) / 1000;
    const rate = el > 0 ? this.done_ / el : 0;
    const msg = `${this.label}: ${this.done_}/${this.total} in ${el.toFixed(1)}s (${rate.toFixed(0)} ${this.unit}/s)`;
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
    progress: (label, total, unit = 'img') => new StderrProgress(label, total, unit, Boolean(stream.isTTY), write),
  };
}

export const silentLogger: Logger = {
  info: () => {},
  warn: () => {},
  progress: () => ({ tick: () => {}, done: () => {} }),
};
