/**
 * Stopping cleanly on Ctrl-C (SIGINT) or SIGTERM. A training run stops through one AbortSignal passed down to
 * its loops (feature extraction, the head, the network trainer), which check it after every batch and throw
 * InterruptedError at that safe point (the network trainer writes its checkpoint first). The command line owns
 * an AbortController and aborts it on the first Ctrl-C while a run can stop cleanly (a run registers itself with
 * `whileStoppable` while it runs); when nothing can stop cleanly, or on a second Ctrl-C, it exits at once.
 * Either way it prints the command that continues the run, which the run registers once its folder exists.
 * `requestStop()` asks every registered run to stop, for callers without a signal of their own.
 */
export class InterruptedError extends Error {
  /** The command that continues the run, when the run set one. */
  resumeCommand?: string;
  /** The run folder that can be resumed, when there is one. */
  outDir?: string;

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

/** Whether something running can stop cleanly now (a run has registered with whileStoppable). */
export function canStop(): boolean {
  return stoppers.size > 0;
}

/** The signal name an aborted AbortSignal stands for: the reason when it is 'SIGTERM' or 'SIGINT', else SIGINT. */
export function stopSignalName(signal: AbortSignal): 'SIGINT' | 'SIGTERM' {
  return signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT';
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
export function installSignalHandlers(write: (line: string) => void, exit: (code: number) => void = (c) => process.exit(c), controller?: AbortController): () => void {
  let count = 0;
  const handler = (signal: 'SIGINT' | 'SIGTERM') => {
    count++;
    const code = signal === 'SIGINT' ? 130 : 143;
    const stopping = count === 1 && (controller ? canStop() && (controller.abort(signal), true) : requestStop(signal));
    if (stopping) {
      write(`\n${signal === 'SIGINT' ? 'Ctrl-C' : signal}: stopping after the current step (a checkpoint is written where the mode keeps one; press Ctrl-C again to quit at once)`);
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
