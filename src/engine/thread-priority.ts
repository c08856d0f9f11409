/**
 * The scheduling priority of the calling thread. On Linux every thread has its own nice value: setpriority() on a
 * thread id (read from /proc/thread-self) changes that thread alone. Elsewhere, or where the system refuses, the
 * thread keeps its priority (the pool then only competes with onnxruntime's threads, as it did before).
 */
import { readlinkSync } from 'node:fs';
import os from 'node:os';

/**
 * Lowers the calling thread's priority by `steps` nice values (1..19) below what it has (the process's, for a new
 * thread), at most to 19, the lowest. Returns the thread's nice value afterwards, or undefined where it could not.
 */
export function lowerThisThreadsPriority(steps: number): number | undefined {
  if (!(steps > 0)) return undefined;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return undefined;
    os.setPriority(tid, Math.min(19, os.getPriority(tid) + Math.round(steps)));
    return os.getPriority(tid);
  } catch {
    return undefined;
  }
}
