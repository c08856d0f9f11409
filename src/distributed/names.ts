/**
 * Names in Redis. Jobs go on one BullMQ queue per extractor key, so workers serving one backbone never see
 * another's jobs and several coordinators with the same backbone share workers. Coordinators announce their
 * runs under `tlearn:extract:*` (a set of run ids, and per run a key that expires unless the coordinator
 * keeps refreshing it), which is how `tlearn worker` finds the queues to serve.
 */
import { randomBytes } from 'node:crypto';
import type { ExtractorSpec } from './codec.js';

/** BullMQ's key prefix (its default). */
export const BULL_PREFIX = 'bull';
export const RUNS_SET = 'tlearn:extract:runs';
export const runKey = (run: string): string => `tlearn:extract:run:${run}`;

/** The BullMQ queue of an extractor key (BullMQ forbids ':' in queue names). */
export function queueName(extractorKey: string): string {
  if (!/^[0-9a-zA-Z_-]+$/.test(extractorKey)) throw new Error(`not an extractor key: '${extractorKey}'`);
  return `tlearn-extract-${extractorKey}`;
}

/** A new run id: time-ordered, unique across machines. */
export function newRunId(): string {
  return `${Date.now().toString(36)}${randomBytes(5).toString('hex')}`;
}

/** Job ids are `<run>-<n>` (BullMQ forbids ':' and integers); a re-enqueued lost job gets a suffix. */
export const jobId = (run: string, n: number, retry = 0): string => `${run}-${n}${retry ? `r${retry}` : ''}`;

/** What a coordinator announces about its run. */
export interface RunAnnouncement {
  run: string;
  queue: string;
  key: string;
  dim: number;
  /** How to build the extractor; workers load it when they start serving the queue. */
  spec: ExtractorSpec;
  /** Where it runs, for the workers' logs. */
  host: string;
}
