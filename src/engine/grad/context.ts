/** What gradient rules use: the graph being extended, forward shapes, and small constant helpers. */
import type { OnnxGraph } from '../../onnx/graph.js';

export class GradientError extends Error {}

export class GradContext {
  private zero?: string;
  private consts = new Map<string, string>();

  constructor(
    readonly g: OnnxGraph,
    private readonly shapes: Map<string, number[]>,
  ) {}

  shape(name: string): number[] {
    const s = this.shapes.get(name);
    if (!s) throw new GradientError(`internal error: no shape for ${name}`);
    return s;
  }

  /** A float scalar 0 (shared). */
  zeroScalar(): string {
    this.zero ??= this.g.scalar('grad/zero', 0);
    return this.zero;
  }

  scalar(v: number): string {
    const key = `f${v}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.g.scalar(`grad/const`, v);
      this.consts.set(key, name);
    }
    return name;
  }

  int64(values: number[]): string {
    const key = `i${values.join(',')}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.g.int64Tensor('grad/shape', values);
      this.consts.set(key, name);
    }
    return name;
  }

  node(op: string, inputs: string[], attrs: Record<string, any> = {}, hint = `grad/${op}`): string {
    const out = this.g.node(op, inputs, attrs, hint);
    return out;
  }

  /** Sums `grad` (of shape `from`) down to shape `to`, undoing numpy broadcasting. */
  reduceTo(grad: string, from: number[], to: number[]): string {
    if (from.length === to.length && from.every((d, i) => d === to[i])) return grad;
    const padded = [...new Array(from.length - to.length).fill(1), ...to];
    const axes = from.map((d, i) => (padded[i] === 1 && d !== 1 ? i : -1)).filter((a) => a >= 0);
    let r = grad;
    if (axes.length) r = this.node('ReduceSum', [grad, this.int64(axes)], { keepdims: 1 });
    return this.node('Reshape', [r, this.int64(to.length ? to : [])]);
  }

}
