/**
 * Dynamic batching: images submitted while the model is busy are gathered and run as one forward pass.
 *
 * A lone image starts at once (no waiting when the model is idle, unless maxWaitMs > 0); while a batch
 * runs, newly submitted images queue, and as soon as it finishes the queue (up to maxBatch images) runs as the
 * next batch. So under load batches grow by themselves to what arrives during one forward pass, and at low load
 * nothing is delayed.
 */
import type { InferenceRunner } from '../runtime/inference.js';

export interface BatcherOptions {
  /** Most images in one forward pass (default 32). */
  maxBatch?: number;
  /** How long an idle model waits for more images before running a partial batch (default 0: never waits). */
  maxWaitMs?: number;
  /** Called after every forward pass with its size and seconds. */
  onBatch?: (size: number, seconds: number) => void;
}

export const DEFAULT_MAX_BATCH = 32;
export const DEFAULT_MAX_WAIT_MS = 0;

interface Pending {
  input: Float32Array;
  resolve: (out: Float32Array) => void;
  reject: (e: unknown) => void;
}

export class Batcher {
  private readonly queue: Pending[] = [];
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private scheduled = false;
  readonly maxBatch: number;
  readonly maxWaitMs: number;

  constructor(
    private readonly runner: InferenceRunner,
    /** Values per input image (height * width * 3). */
    private readonly inputLength: number,
    private readonly opts: BatcherOptions = {},
  ) {
    this.maxBatch = Math.max(1, opts.maxBatch ?? DEFAULT_MAX_BATCH);
    this.maxWaitMs = Math.max(0, opts.maxWaitMs ?? DEFAULT_MAX_WAIT_MS);
  }

  /** Images waiting for a forward pass. */
  get pending(): number {
    return this.queue.length;
  }

  /** Runs one preprocessed image (inputLength values); resolves with its output row. */
  submit(input: Float32Array): Promise<Float32Array> {
    if (input.length !== this.inputLength) return Promise.reject(new Error(`expected ${this.inputLength} input values, got ${input.length}`));
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running || this.scheduled) return;
    if (this.queue.length >= this.maxBatch || this.maxWaitMs === 0) {
      // setImmediate: images submitted in the same turn of the event loop share the batch.
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        void this.runNext();
      });
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.runNext();
      }, this.maxWaitMs);
    }
  }

  private async runNext(): Promise<void> {
    if (this.running || !this.queue.length) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.running = true;
    const items = this.queue.splice(0, this.maxBatch);
    const n = items.length;
    const input = new Float32Array(n * this.inputLength);
    items.forEach((p, k) => input.set(p.input, k * this.inputLength));
    const t0 = performance.now();
    try {
      const out = await this.runner.run(input, n);
      this.opts.onBatch?.(n, (performance.now() - t0) / 1000);
      const dim = out.length / n;
      items.forEach((p, k) => p.resolve(out.slice(k * dim, (k + 1) * dim)));
    } catch (e) {
      for (const p of items) p.reject(e);
    } finally {
      this.running = false;
    }
    // Whatever queued during the pass has waited long enough: run it now.
    if (this.queue.length) void this.runNext();
  }
}
