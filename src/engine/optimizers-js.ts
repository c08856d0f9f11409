/**
 * Optimizers over plain Float32Array parameters (for the onnxruntime training engine), with Keras' update
 * rules and defaults: Adam (eps 1e-7), SGD with momentum, RMSprop (rho 0.9), Adadelta (rho 0.95).
 * Weight decay is decoupled (w -= lr * decay * w), applied to kernels only.
 */
import { DEFAULT_LR, type OptimizerName } from './optimizers.js';

export interface JsOptimizerOptions {
  name: OptimizerName;
  lr?: number;
  momentum?: number;
  weightDecay?: number;
}

export interface ParamSlot {
  value: Float32Array;
  /** Whether weight decay applies (kernels yes, biases no). */
  decay: boolean;
  /** Multiplies the learning rate for this parameter (discriminative rates); default 1. */
  lrScale?: number;
}

export class JsOptimizer {
  readonly lr: number;
  private t = 0;
  private state: Float32Array[][] = [];

  constructor(
    readonly o: JsOptimizerOptions,
    private readonly slots: ParamSlot[],
  ) {
    this.lr = o.lr ?? DEFAULT_LR[o.name];
    const n = o.name === 'sgd' ? 1 : o.name === 'rmsprop' ? 1 : 2;
    this.state = slots.map((s) => Array.from({ length: n }, () => new Float32Array(s.value.length)));
  }

  /** The optimizer's state (step count and per-parameter moments), for a checkpoint. */
  getState(): { t: number; slots: Float32Array[][] } {
    return { t: this.t, slots: this.state };
  }

  /** Continues from a saved state (same parameters, same optimizer). */
  setState(s: { t: number; slots: Float32Array[][] }): void {
    if (s.slots.length !== this.state.length || s.slots.some((st, k) => st.length !== this.state[k]!.length || st.some((a, j) => a.length !== this.state[k]![j]!.length))) {
      throw new Error('optimizer state does not match the parameters');
    }
    this.t = s.t;
    s.slots.forEach((st, k) => st.forEach((a, j) => this.state[k]![j]!.set(a)));
  }

  /** Applies one update with these gradients (already averaged over the batch). `lrScale` multiplies the rate (schedules). */
  step(grads: Float32Array[], lrScale = 1): void {
    this.t++;
    const lrAll = this.lr * lrScale;
    const wd = this.o.weightDecay ?? 0;
    this.slots.forEach((slot, k) => {
      const lr = lrAll * (slot.lrScale ?? 1);
      const w = slot.value;
      const g = grads[k]!;
      const st = this.state[k]!;
      if (wd > 0 && slot.decay) for (let i = 0; i < w.length; i++) w[i]! -= lr * wd * w[i]!;
      switch (this.o.name) {
        case 'adam': {
          const [m, v] = st as [Float32Array, Float32Array];
          const b1 = 0.9;
          const b2 = 0.999;
          const a = (lr * Math.sqrt(1 - b2 ** this.t)) / (1 - b1 ** this.t);
          for (let i = 0; i < w.length; i++) {
            const gi = g[i]!;
            const mi = (m[i] = b1 * m[i]! + (1 - b1) * gi);
            const vi = (v[i] = b2 * v[i]! + (1 - b2) * gi * gi);
            w[i]! -= (a * mi) / (Math.sqrt(vi) + 1e-7);
          }
          break;
        }
        case 'sgd': {
          const mom = this.o.momentum ?? 0.9;
          const [vel] = st as [Float32Array];
          for (let i = 0; i < w.length; i++) {
            vel[i] = mom * vel[i]! - lr * g[i]!;
            w[i]! += vel[i]!;
          }
          break;
        }
        case 'rmsprop': {
          const [ms] = st as [Float32Array];
          for (let i = 0; i < w.length; i++) {
            const gi = g[i]!;
            ms[i] = 0.9 * ms[i]! + 0.1 * gi * gi;
            w[i]! -= (lr * gi) / (Math.sqrt(ms[i]!) + 1e-7);
          }
          break;
        }
        case 'adadelta': {
          const [acc, accUpd] = st as [Float32Array, Float32Array];
          const rho = 0.95;
          const eps = 1e-7;
          for (let i = 0; i < w.length; i++) {
            const gi = g[i]!;
            acc[i] = rho * acc[i]! + (1 - rho) * gi * gi;
            const upd = (Math.sqrt(accUpd[i]! + eps) / Math.sqrt(acc[i]! + eps)) * gi;
            accUpd[i] = rho * accUpd[i]! + (1 - rho) * upd * upd;
            w[i]! -= lr * upd;
          }
          break;
        }
        default:
          throw new Error(`unknown optimizer ${this.o.name as string}`);
      }
    });
  }
}
