/**
 * Stopping cleanly on Ctrl-C (SIGINT) or SIGTERM. Code that can stop at a safe point (the training loop, which
 * then writes a checkpoint) registers a stop handler while it runs; the command line's signal handler asks it
 * to stop, or, when nothing can stop cleanly (or on a second Ctrl-C), exits at once. Either way it prints the
 * command that continues the run, which the run registers once its folder exists.
 */
export class InterruptedError extends Error {
  /** The command that continues the run, when the run set one. */
  resumeCommand?: string;

  constructor(
    message: string,
    readonly signal: 'SIGINT' | 'SIGTERM' = 'SIGINT',
  ) {
    super(message);
  }
}

const stoppers = new Set<(signal: 'SIGINT' | 'SIGTERM') => void>();
let resumeCommand: string | undefined;

/** Registers a stop handler while `fn` runs. */
export async function whileStoppable<T>(onStop: (signal: 'SIGINT' | 'SIGTERM') => void, fn: () => Promise<T>): Promise<T> {
  stoppers.add(onStop);
  try {
    return await fn();
  } finally {
    stoppers.delete(onStop);
  }
}

/** Asks whatever is running to stop at its next safe point; false when nothing can. */
export function requestStop(signal: 'SIGINT' | 'SIGTERM' = 'SIGINT'): boolean {
  for (const s of stoppers) s(signal);
  return stoppers.size > 0;
}

/** The command that continues the current run (set by the run once its folder exists). */
export function setResumeCommand(cmd: string | undefined): void {
  resumeCommand = cmd;
}

export function getResumeCommand(): string | undefined {
  return resumeCommand;
}

/** A path quoted for a POSIX shell when it needs it. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command line's handling of SIGINT/SIGTERM: the first asks for a clean stop (or exits when nothing can
 * stop cleanly), the second exits at once. Returns a function that removes the handlers.
 */
export function installSignalHandlers(write: (line: string) => void, exit: (code: number) => void = (c) => process.exit(c)): () => void {
  let count = 0;
  const handler = (signal: 'SIGINT' | 'SIGTERM') => {
    count++;
    const code = signal === 'SIGINT' ? 130 : 143;
    if (count === 1 && requestStop(signal)) {
      write(`\n${signal === 'SIGINT' ? 'Ctrl-C' : signal}: stopping after the current step to write a checkpoint (press Ctrl-C again to quit at once)`);
      return;
    }
    write(`\ninterrupted${resumeCommand ? `; to continue: ${resumeCommand}` : ''}`);
    exit(code);
  };
  const onInt = () => handler('SIGINT');
  const onTerm = () => handler('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return () => {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  };
}
