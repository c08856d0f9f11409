/**
 * Weight averaging for the network trainer: an exponential moving average of the weights updated after every
 * optimizer step (Polyak averaging, with TF's warm-up of the decay), and stochastic weight averaging (the plain
 * mean of the weights at the end of chosen epochs). Both hold plain arrays (the trainer's snapshot layout: trained
 * weights, then BatchNormalization statistics) and can be saved and restored as a state object (checkpoints).
 */

export interface EmaState {
  decay: number;
  updates: number;
  weights: Float32Array[];
}

export class WeightEma {
  private constructor(
    readonly decay: number,
    private updates: number,
    readonly weights: Float32Array[],
  ) {}

  /** Starts the average at the current weights. `decay` in (0, 1), e.g. 0.999. */
  static start(decay: number, current: Float32Array[]): WeightEma {
    if (!(decay > 0 && decay < 1)) throw new Error(`the EMA decay must be in (0, 1), got ${decay}`);
    return new WeightEma(decay, 0, current.map((v) => new Float32Array(v)));
  }

  static fromState(s: EmaState): WeightEma {
    return new WeightEma(s.decay, s.updates, s.weights.map((v) => new Float32Array(v)));
  }

  /** The decay used at the next update: min(decay, (1 + t) / (10 + t)), so early weights do not linger. */
  get currentDecay(): number {
    return Math.min(this.decay, (1 + this.updates) / (10 + this.updates));
  }

  update(current: Float32Array[]): void {
    const d = this.currentDecay;
    this.updates++;
    current.forEach((w, k) => {
      const avg = this.weights[k]!;
      for (let i = 0; i < w.length; i++) avg[i] = d * avg[i]! + (1 - d) * w[i]!;
    });
  }

  state(): EmaState {
    return { decay: this.decay, updates: this.updates, weights: this.weights.map((v) => new Float32Array(v)) };
  }
}

export interface SwaState {
  count: number;
  sum: Float64Array[];
}

export class WeightSwa {
  private constructor(
    private count_: number,
    private readonly sum: Float64Array[],
  ) {}

  static empty(): WeightSwa {
    return new WeightSwa(0, []);
  }

  static fromState(s: SwaState): WeightSwa {
    return new WeightSwa(s.count, s.sum.map((v) => new Float64Array(v)));
  }

  get count(): number {
    return this.count_;
  }

  add(current: Float32Array[]): void {
    if (!this.sum.length) for (const w of current) this.sum.push(new Float64Array(w.length));
    current.forEach((w, k) => {
      const s = this.sum[k]!;
      for (let i = 0; i < w.length; i++) s[i]! += w[i]!;
    });
    this.count_++;
  }

  /** The mean of the added weights. */
  average(): Float32Array[] {
    if (!this.count_) throw new Error('no weights were added to the average');
    return this.sum.map((s) => Float32Array.from(s, (v) => v / this.count_));
  }

  state(): SwaState {
    return { count: this.count_, sum: this.sum.map((v) => new Float64Array(v)) };
  }
}
