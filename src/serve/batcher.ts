/**
 * Dynamic batching: images submitted while the model is busy are gathered and run as one forward pass.
 *
 * The batcher knows which images are on their way (announced with expect() when a request starts decoding
 * them). A batch starts at once when nothing else is on its way, so a lone request never waits; otherwise it
 * waits up to maxWaitMs for the images being decoded (or until maxBatch images are queued), so that under load a
 * pass is not spent on one image while the next ones are a millisecond away. While a batch runs, newly submitted
 * images queue, and when it finishes the queue runs as the next batch under the same rule.
 */
import type { InferenceRunner } from '../runtime/inference.js';

export interface BatcherOptions {
  /** Most images in one forward pass (default 32). */
  maxBatch?: number;
  /** How long a partial batch waits for images still being decoded (default 2 ms; 0: never waits). A batch never waits when no other image is on its way. */
  maxWaitMs?: number;
  /** Called after every forward pass with its size and seconds. */
  onBatch?: (size: number, seconds: number) => void;
}

export const DEFAULT_MAX_BATCH = 32;
export const DEFAULT_MAX_WAIT_MS = 2;

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
  /** Images announced with expect() and not yet submitted (or given up). */
  private incoming = 0;
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

  /** Images announced and not yet submitted. */
  get expected(): number {
    return this.incoming;
  }

  /**
   * Announces an image that is being decoded and will be submitted (or not, on an error): call the returned
   * function when it is submitted or given up (calling it again does nothing).
   */
  expect(): () => void {
    this.incoming++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.incoming--;
      // the last image on its way arrived (or never will): a waiting batch need not wait longer
      if (this.incoming === 0 && this.timer) this.runSoon();
    };
  }

  /** Runs one preprocessed image (inputLength values); resolves with its output row. */
  submit(input: Float32Array, arrived?: () => void): Promise<Float32Array> {
    if (input.length !== this.inputLength) {
      arrived?.();
      return Promise.reject(new Error(`expected ${this.inputLength} input values, got ${input.length}`));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      arrived?.();
      this.schedule();
    });
  }

  private runSoon(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.scheduled) return;
    // setImmediate: images submitted in the same turn of the event loop share the batch.
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.runNext();
    });
  }

  private schedule(): void {
    if (this.running || this.scheduled || !this.queue.length) return;
    if (this.queue.length >= this.maxBatch || this.maxWaitMs === 0 || this.incoming === 0) {
      this.runSoon();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.runNext();
      }, this.maxWaitMs);
    }
  }

  private async runNext(): Promise<void> {
    if (this.running || !this.queue.length) return;
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
    // What queued during the pass runs next: at once, or after waiting for the images still being decoded.
    this.schedule();
  }
}
