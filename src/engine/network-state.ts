/**
 * The training loop's state as a checkpoint (checkpoint.ts): weights, optimizer state, schedule position (step),
 * the shuffle and dropout generators, the position inside an epoch, the best epoch so far and its weights, early
 * stopping's count, the history and the files that could not be read — plus named extra parts that other
 * training features add (e.g. EMA weights). A fingerprint of the model and the options refuses a checkpoint
 * written for different training.
 */
import type { SkippedFile } from '../data/discover.js';
import { sha256 } from '../util/hash.js';
import { readCheckpoint, writeCheckpoint, CheckpointError, type CheckpointTensor } from './checkpoint.js';
import type { EpochLog } from './fit.js';
import type { OnnxTrainer } from './onnx-trainer.js';

/** Extra training state saved and restored with the loop's own (by name). */
export interface CheckpointPart {
  name: string;
  save(): { meta?: unknown; tensors?: CheckpointTensor[] };
  load(saved: { meta?: unknown; tensors: CheckpointTensor[] }): void;
}

export interface LoopState {
  /** Completed epochs. */
  epoch: number;
  /** Batches done of the next epoch (0 at an epoch's end). */
  batch: number;
  /** Optimizer steps done (the schedule's position). */
  step: number;
  /** Sums over the batches done of the next epoch. */
  partial: { lossSum: number; correct: number; n: number; seconds: number };
  /** The shuffle generator at the start of the next epoch. */
  shuffleRng: number;
  best: { loss: number; epoch: number; weights: Float32Array[] };
  stale: number;
  stoppedEarly: boolean;
  history: EpochLog[];
  epochSeconds: number[];
  failed: SkippedFile[];
}

interface Meta extends Omit<LoopState, 'best'> {
  kind: 'network-training';
  fingerprint: string;
  trainerRng: number;
  optimizerT: number;
  slotsPerParam: number;
  /** Parameters with optimizer state (the trained weights; `weights` also holds BatchNormalization statistics). */
  optimizerParams: number;
  best: { loss: number; epoch: number; isCurrent: boolean };
  parts: Record<string, { meta?: unknown; tensors: number }>;
}

function sameWeights(a: Float32Array[], b: Float32Array[]): boolean {
  return a.length === b.length && a.every((x, i) => x.length === b[i]!.length && x.every((v, j) => Object.is(v, b[i]![j])));
}

/** A fingerprint of what must not change between a checkpoint and its resumption. */
export function trainingFingerprint(trainer: OnnxTrainer, what: unknown): string {
  return sha256(JSON.stringify({ params: trainer.paramSpecs, what })).slice(0, 32);
}

export async function saveLoopState(file: string, fingerprint: string, trainer: OnnxTrainer, s: LoopState, parts: CheckpointPart[] = []): Promise<void> {
  const t = trainer.getState();
  // the best weights are stored apart unless they are the current ones (an epoch's end that improved, no averaging)
  const isCurrent = s.batch === 0 && s.best.epoch === s.epoch && s.epoch > 0 && sameWeights(s.best.weights, t.weights);
  const tensors: Array<[string, CheckpointTensor]> = [];
  t.weights.forEach((w, i) => tensors.push([`weights/${i}`, w]));
  t.optimizer.slots.forEach((slots, i) => slots.forEach((m, j) => tensors.push([`optimizer/${i}/${j}`, m])));
  if (!isCurrent) s.best.weights.forEach((w, i) => tensors.push([`best/${i}`, w]));
  const partMeta: Meta['parts'] = {};
  for (const p of parts) {
    const saved = p.save();
    const list = saved.tensors ?? [];
    list.forEach((x, k) => tensors.push([`part/${p.name}/${k}`, x]));
    partMeta[p.name] = { meta: saved.meta, tensors: list.length };
  }
  const { best, ...rest } = s;
  const meta: Meta = {
    kind: 'network-training',
    fingerprint,
    ...rest,
    trainerRng: t.rng,
    optimizerT: t.optimizer.t,
    slotsPerParam: t.optimizer.slots[0]?.length ?? 0,
    optimizerParams: t.optimizer.slots.length,
    best: { loss: best.loss, epoch: best.epoch, isCurrent },
    parts: partMeta,
  };
  await writeCheckpoint(file, meta, tensors);
}

/** Restores the trainer from `file` and returns the loop state, or undefined when there is no checkpoint. */
export async function loadLoopState(file: string, fingerprint: string, trainer: OnnxTrainer, parts: CheckpointPart[] = []): Promise<LoopState | undefined> {
  const ck = await readCheckpoint<Meta>(file);
  if (!ck) return undefined;
  const m = ck.meta;
  if (m.kind !== 'network-training') throw new CheckpointError(`${file} is not a training checkpoint`);
  if (m.fingerprint !== fingerprint) {
    throw new CheckpointError(`${file} was written for a different model, data or training options than this run's; it cannot be resumed (delete it to start training anew)`);
  }
  const get = (name: string) => {
    const t = ck.tensors.get(name);
    if (!t) throw new CheckpointError(`${file} lacks ${name}`);
    return t;
  };
  const f32 = (name: string) => {
    const t = get(name);
    if (!(t instanceof Float32Array)) throw new CheckpointError(`${file}: ${name} is not float32`);
    return t;
  };
  const n = trainer.paramSpecs.length;
  const weights = Array.from({ length: n }, (_, i) => f32(`weights/${i}`));
  const slots = Array.from({ length: m.optimizerParams }, (_, i) => Array.from({ length: m.slotsPerParam }, (_, j) => f32(`optimizer/${i}/${j}`)));
  trainer.setState({ weights, optimizer: { t: m.optimizerT, slots }, rng: m.trainerRng });
  const bestWeights = m.best.isCurrent ? trainer.snapshot() : Array.from({ length: n }, (_, i) => f32(`best/${i}`));
  for (const p of parts) {
    const saved = m.parts[p.name];
    if (!saved) throw new CheckpointError(`${file} has no '${p.name}' state; it was written without that option`);
    p.load({ meta: saved.meta, tensors: Array.from({ length: saved.tensors }, (_, k) => get(`part/${p.name}/${k}`)) });
  }
  return {
    epoch: m.epoch,
    batch: m.batch,
    step: m.step,
    partial: m.partial,
    shuffleRng: m.shuffleRng,
    best: { loss: m.best.loss, epoch: m.best.epoch, weights: bestWeights },
    stale: m.stale,
    stoppedEarly: m.stoppedEarly,
    history: m.history,
    epochSeconds: m.epochSeconds,
    failed: m.failed,
  };
}
