/**
 * The training-recipe options of the network trainer that sit around its loop — mixup/CutMix on each batch, an
 * exponential moving average of the weights after each step, stochastic weight averaging at the end of epochs —
 * with their state (averages, random generator) in one object that a checkpoint can save and restore.
 */
import { Rng } from '../util/rng.js';
import { WeightEma, WeightSwa, type EmaState, type SwaState } from './averaging.js';
import { mixBatch, mixingEnabled, type MixedTargets, type MixOptions } from './mixing.js';

export interface RecipeOptions extends MixOptions {
  /** Decay of an exponential moving average of the weights (e.g. 0.999); validation, checkpoints and the result use the average. */
  ema?: number;
  /** Stochastic weight averaging: average the weights at the end of each of the last `swa` epochs. */
  swa?: number;
}

export interface RecipeState {
  mixRng: number;
  ema: EmaState | null;
  swa: SwaState | null;
}

export class RecipeError extends Error {}

export function checkRecipe(o: RecipeOptions, epochs: number): void {
  if (o.ema !== undefined && !(o.ema > 0 && o.ema < 1)) throw new RecipeError(`--ema must be a decay in (0, 1), e.g. 0.999, got ${o.ema}`);
  if (o.swa !== undefined && !(Number.isInteger(o.swa) && o.swa >= 1 && o.swa <= epochs)) throw new RecipeError(`--swa must be a number of final epochs in 1..${epochs} (--epochs), got ${o.swa}`);
  if (o.ema !== undefined && o.swa !== undefined) throw new RecipeError('--ema and --swa are two ways of averaging weights; choose one');
  for (const [k, v] of [['--mixup', o.mixup], ['--cutmix', o.cutmix]] as const) if (v !== undefined && !(v >= 0 && Number.isFinite(v))) throw new RecipeError(`${k} must be an alpha >= 0 (0 = off), got ${v}`);
}

export class TrainingRecipe {
  private constructor(
    readonly o: RecipeOptions,
    private readonly epochs: number,
    private mixRng: Rng,
    private ema: WeightEma | undefined,
    readonly swa: WeightSwa | undefined,
  ) {}

  static start(o: RecipeOptions, epochs: number, seed: number, weights: Float32Array[]): TrainingRecipe {
    checkRecipe(o, epochs);
    return new TrainingRecipe(o, epochs, new Rng(seed + 11), o.ema !== undefined ? WeightEma.start(o.ema, weights) : undefined, o.swa !== undefined ? WeightSwa.empty() : undefined);
  }

  static fromState(o: RecipeOptions, epochs: number, s: RecipeState): TrainingRecipe {
    checkRecipe(o, epochs);
    const rng = new Rng(0);
    rng.setState(s.mixRng);
    return new TrainingRecipe(o, epochs, rng, s.ema ? WeightEma.fromState(s.ema) : undefined, s.swa ? WeightSwa.fromState(s.swa) : undefined);
  }

  state(): RecipeState {
    return { mixRng: this.mixRng.getState(), ema: this.ema?.state() ?? null, swa: this.swa?.state() ?? null };
  }

  /** A training batch as the step sees it: mixed (mixup/CutMix) or as it is. */
  prepare(x: Float32Array, labels: Int32Array, size: [number, number]): { x: Float32Array; mixed?: MixedTargets } {
    if (!mixingEnabled(this.o) || labels.length < 2) return { x };
    const m = mixBatch(x, labels, size, this.o, this.mixRng);
    return { x: m.x, mixed: m.mixed };
  }

  /** After each optimizer step. */
  afterStep(weights: Float32Array[]): void {
    this.ema?.update(weights);
  }

  /** After each epoch's training (before validation). */
  afterEpoch(epoch: number, weights: Float32Array[]): void {
    if (this.swa && epoch > this.epochs - this.o.swa!) this.swa.add(weights);
  }

  /** The weights validation and checkpoints use: the moving average with --ema, else undefined (the trainer's own). */
  evalWeights(): Float32Array[] | undefined {
    return this.ema?.weights;
  }

  describe(): string[] {
    const parts: string[] = [];
    if (this.o.mixup) parts.push(`mixup alpha ${this.o.mixup}`);
    if (this.o.cutmix) parts.push(`CutMix alpha ${this.o.cutmix}`);
    if (this.o.ema !== undefined) parts.push(`EMA of the weights, decay ${this.o.ema}`);
    if (this.o.swa !== undefined) parts.push(`SWA over the last ${this.o.swa} epoch${this.o.swa > 1 ? 's' : ''}`);
    return parts;
  }
}
