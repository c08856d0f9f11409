/** Parsers for command-line values: each rejects bad input with a message that names the flag. */
import { InvalidArgumentError, type Command } from 'commander';
import { installSignalHandlers } from '../util/interrupt.js';
import type { Logger } from '../util/log.js';
import { renderTrainingEvents } from '../engine/event-render.js';

export function int(name: string, min = 1) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got '${v}'`);
    return n;
  };
}

export function num(name: string, min = -Infinity, maxExclusive = Infinity) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n >= maxExclusive) {
      const range = maxExclusive === Infinity ? `>= ${min}` : `in [${min}, ${maxExclusive})`;
      throw new InvalidArgumentError(`${name} must be a number ${range}, got '${v}'`);
    }
    return n;
  };
}

export function positive(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number, got '${v}'`);
    return n;
  };
}

export function oneOf<T extends string>(name: string, choices: readonly T[]) {
  return (v: string): T => {
    if (!choices.includes(v as T)) throw new InvalidArgumentError(`${name} must be one of ${choices.join(', ')}, got '${v}'`);
    return v as T;
  };
}

export function list(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** '224' or '224x160' (height x width). */
export function size(name: string) {
  return (v: string): [number, number] => {
    const m = /^(\d+)(?:x(\d+))?$/i.exec(v.trim());
    const h = m ? Number(m[1]) : NaN;
    const w = m ? Number(m[2] ?? m[1]) : NaN;
    if (!(h >= 8 && w >= 8 && h <= 4096 && w <= 4096)) throw new InvalidArgumentError(`${name} must be a size like 224 or 160x200 (8..4096), got '${v}'`);
    return [h, w];
  };
}

/** Option names in the library → the flag's attribute name in commander, where they differ. */
const FLAG_OF: Record<string, string> = { preprocessing: 'preprocess', data: '' };

/**
 * The run options for the library. With --resume or --from, only what was given on the command line (not the
 * flags' defaults), so that the recorded run's options apply to everything else.
 */
export function givenOptions(cmd: Command, o: { resume?: string; from?: string }, values: Record<string, unknown>, logger: Logger, signal?: AbortSignal): Record<string, unknown> {
  // the run is drawn from its events: progress bars and lines on the logger, as they come
  const out: Record<string, unknown> = { onEvent: renderTrainingEvents(logger), signal };
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) continue;
    const flag = FLAG_OF[key] ?? key;
    if (!(o.resume || o.from) || flag === '' || cmd.getOptionValueSource(flag) === 'cli') out[key] = value;
  }
  return out;
}

/**
 * Runs a command's work with Ctrl-C / SIGTERM handled: the command owns an AbortController, passed to `fn` as a
 * signal, that the first Ctrl-C aborts while a run can stop cleanly (it stops within a batch, with a checkpoint
 * where one can be written); otherwise, or on a second Ctrl-C, the process exits at once.
 */
export async function withSignals<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const remove = installSignalHandlers((line) => process.stderr.write(`${line}\n`), undefined, controller);
  try {
    return await fn(controller.signal);
  } finally {
    remove();
  }
}

/** Comma-separated sizes: '128,160' or '128x96,160x120'. */
export function sizes(name: string) {
  const one = size(name);
  return (v: string): Array<[number, number]> => {
    const parts = v.split(',').map((p) => p.trim()).filter(Boolean);
    if (!parts.length) throw new InvalidArgumentError(`${name} needs at least one size, e.g. 128,160`);
    return parts.map(one);
  };
}

/** A probability in [0, 1]. */
export function probability(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !(n >= 0 && n <= 1)) throw new InvalidArgumentError(`${name} must be a probability in [0, 1], got '${v}'`);
    return n;
  };
}
