/**
 * The onnxruntime training engine: trains a TF.js layers model (convolutions and all) on the CPU at native
 * speed. onnxruntime runs a generated training graph (forward, softmax cross-entropy, gradients of the trained
 * weights) on micro-batches; gradients are summed over a batch and the optimizer updates the weights in JS.
 * Evaluation runs a forward graph with the current weights. The weights go back into the Keras model.
 */
import os from 'node:os';
import type * as ortTypes from 'onnxruntime-node';
import type { LayersModelArtifacts } from '../backbones/layers-model.js';
import { decodeWeights, encodeWeights } from '../backbones/layers-model.js';
import { buildOnnxGraph, type OnnxGraphBuild } from '../onnx/convert.js';
import { ShapeInferenceError } from '../onnx/shapes.js';
import type { ParamBinding, StateBinding } from '../onnx/context.js';
import { Rng } from '../util/rng.js';
import { buildTrainingGraph, type TrainingGraph } from './grad/builder.js';
import type { MixedTargets } from './mixing.js';
import { JsOptimizer } from './optimizers-js.js';
import type { OptimizerName } from './optimizers.js';

export interface OnnxTrainerOptions {
  /** Which weights (TF.js weight names such as conv2d_1/kernel) are trained; the rest stay frozen. */
  trainable: (kerasWeightName: string) => boolean;
  /** Learning-rate multiplier per trained weight (discriminative rates); default 1. */
  lrMultiplier?: (kerasWeightName: string) => number;
  /** Samples per onnxruntime run; batches are split into micro-batches and their gradients summed. */
  microBatch: number;
  optimizer: OptimizerName;
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  labelSmoothing?: number;
  /** Per-class loss weights (class weights), or null. */
  classWeights?: number[] | null;
  seed: number;
  threads?: number;
  /**
   * BatchNormalization layers whose gamma/beta are trained normalise with batch statistics (per micro-batch)
   * and update their moving statistics with this momentum (default: each layer's own, Keras' 0.99 when unset).
   */
  bnMomentum?: number;
  /** BatchNormalization layers whose moving statistics are re-estimated after training although not trained. */
  bnLive?: (layer: string) => boolean;
}

/** A weight or statistic fed to a session: its graph input and its current value. */
interface Feed {
  onnxName: string;
  dims: number[];
  value: Float32Array;
}

export interface BatchResult {
  /** Sum over the batch of the (weighted) cross-entropy. */
  lossSum: number;
  correct: number;
  n: number;
}

type Ort = typeof ortTypes;

function sessionOptions(threads: number, arena = true): ortTypes.InferenceSession.SessionOptions {
  return {
    enableCpuMemArena: arena,
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

/** The training graph for one input size, its session and what it is fed. */
interface TrainStep {
  graph: TrainingGraph;
  session: ortTypes.InferenceSession;
  feeds: Feed[];
  /** [height, width, channels] of the images it trains on. */
  shape: [number, number, number];
  /** Per training-mode BatchNormalization layer: its moving mean and variance (views into the trainer's values). */
  movingStats: Map<string, { mean: Float32Array; variance: Float32Array }>;
}

export class OnnxTrainer {
  private statsSession?: Promise<{ session: ortTypes.InferenceSession; feeds: Feed[]; stats: OnnxGraphBuild['batchStats'] }>;

  private constructor(
    private readonly ort: Ort,
    private readonly artifacts: LayersModelArtifacts,
    private readonly o: OnnxTrainerOptions,
    private step: TrainStep,
    private readonly evalSession: ortTypes.InferenceSession,
    /** Trained weights, then BatchNormalization moving statistics: the order of snapshot() and exportArtifacts(). */
    private readonly bindings: ParamBinding[],
    /** The current values, in `bindings` order (trained weights first, `paramLength` of them). */
    private readonly current: Float32Array[],
    private readonly paramLength: number,
    private readonly evalFeeds: Feed[],
    private readonly optimizer: JsOptimizer,
    /** The model's own input size: evaluation, re-estimation and exports use it. */
    readonly inputShape: [number, number, number],
    readonly classes: number,
    private readonly rng: Rng,
    private readonly threads: number,
  ) {}

  /** Builds the training graph (at the model's size, or `size`) and its session, fed from the trainer's values. */
  private static async buildStep(ort: Ort, artifacts: LayersModelArtifacts, o: OnnxTrainerOptions, threads: number, lookup: (kerasName: string) => Float32Array | undefined, stateOf: (layer: string, w: string) => Float32Array, size?: [number, number]): Promise<{ step: TrainStep; build: OnnxGraphBuild }> {
    const build = buildOnnxGraph(artifacts, { training: { trainable: o.trainable, batchNorm: 'batch' }, logits: true, ...(size ? { inputShape: [null, size[0], size[1], 3] } : {}) });
    if (!build.params.length) throw new Error('no trainable weights selected');
    let graph: TrainingGraph;
    try {
      graph = buildTrainingGraph(build, o.microBatch);
    } catch (e) {
      if (size && e instanceof ShapeInferenceError) throw new Error(`this model cannot train at ${size.join('x')}: its layers depend on the input size (${e.message}); progressive resizing needs global pooling before the head`);
      throw e;
    }
    const session = await ort.InferenceSession.create(graph.bytes, sessionOptions(threads));
    const feeds = build.params.map((b) => {
      const value = lookup(b.kerasName);
      return { onnxName: b.onnxName, dims: b.dims, value: value ?? new Float32Array(b.initial) };
    });
    const movingStats = new Map(graph.batchStats.map((st) => [st.layer, { mean: stateOf(st.layer, 'moving_mean'), variance: stateOf(st.layer, 'moving_variance') }]));
    return { step: { graph, session, feeds, shape: build.kerasInputShape.slice(1) as [number, number, number], movingStats }, build };
  }

  static async create(artifacts: LayersModelArtifacts, o: OnnxTrainerOptions): Promise<OnnxTrainer> {
    const ort = await import('onnxruntime-node');
    const threads = o.threads ?? Math.max(1, os.availableParallelism());
    const evalBuild = buildOnnxGraph(artifacts, { training: { trainable: o.trainable, dropout: false, batchNorm: 'moving', bnLive: o.bnLive } });
    const state = evalBuild.state.map((b) => new Float32Array(b.initial));
    const stateOf = (layer: string, w: string) => state[evalBuild.state.findIndex((b) => b.layer === layer && b.weight === w)]!;
    // the training build creates the weight arrays (lookup finds none yet); they are then shared by every session
    const { step, build: trainBuild } = await OnnxTrainer.buildStep(ort, artifacts, o, threads, () => undefined, stateOf);
    const bindings: ParamBinding[] = [...trainBuild.params, ...evalBuild.state];
    const current = [...step.feeds.map((f) => f.value), ...state];
    const byKeras = new Map(bindings.map((b, i) => [b.kerasName, current[i]!]));
    // no memory arena for evaluation: its activations are freed after each run instead of staying reserved
    // beside the training session's (compare's peak memory is the two together)
    const evalSession = await ort.InferenceSession.create(evalBuild.graph.toBytes(), sessionOptions(threads, false));
    const evalFeeds = [...evalBuild.params, ...evalBuild.state].map((b) => ({ onnxName: b.onnxName, dims: b.dims, value: byKeras.get(b.kerasName)! }));
    const optimizer = new JsOptimizer(
      { name: o.optimizer, lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay },
      trainBuild.params.map((p, i) => ({ value: current[i]!, decay: /kernel$/.test(p.kerasName), lrScale: o.lrMultiplier?.(p.kerasName) ?? 1 })),
    );
    const classes = trainBuild.kerasOutputShape[1] as number;
    return new OnnxTrainer(ort, artifacts, o, step, evalSession, bindings, current, trainBuild.params.length, evalFeeds, optimizer, step.shape, classes, new Rng(o.seed), threads);
  }

  /** The [height, width] the trainer trains at now (progressive resizing changes it; evaluation keeps inputShape). */
  get trainSize(): [number, number] {
    return [this.step.shape[0], this.step.shape[1]];
  }

  /**
   * Trains at another input size from the next batch on (progressive resizing): a new training graph for the
   * same weights, BatchNormalization statistics and optimizer state. Needs a model whose weights do not depend
   * on the input size (global pooling before the head, as the zoo backbones).
   */
  async setTrainSize(size: [number, number]): Promise<void> {
    if (size[0] === this.step.shape[0] && size[1] === this.step.shape[1]) return;
    const byKeras = new Map(this.bindings.map((b, i) => [b.kerasName, this.current[i]!]));
    const stateOf = (layer: string, w: string) => this.current[this.bindings.findIndex((b, i) => i >= this.paramLength && (b as StateBinding).layer === layer && (b as StateBinding).weight === w)]!;
    const { step, build } = await OnnxTrainer.buildStep(this.ort, this.artifacts, this.o, this.threads, (k) => byKeras.get(k), stateOf, size);
    const names = build.params.map((p) => p.kerasName).join();
    if (names !== this.bindings.slice(0, this.paramLength).map((b) => b.kerasName).join()) {
      await step.session.release();
      throw new Error('internal error: the training graph at another input size trains other weights');
    }
    await this.step.session.release();
    this.step = step;
  }

  get paramCount(): number {
    return this.current.slice(0, this.paramLength).reduce((a, v) => a + v.length, 0);
  }

  get lr(): number {
    return this.optimizer.lr;
  }

  /** The trained weights (live views, in training-graph order). */
  get values(): Float32Array[] {
    return this.current.slice(0, this.paramLength);
  }

  /** The current weights then BatchNormalization statistics, live (not copies): snapshot()'s layout. */
  get liveWeights(): Float32Array[] {
    return this.current;
  }

  /** BatchNormalization layers in training mode (batch statistics): those whose gamma/beta are trained. */
  get trainingModeBatchNorm(): string[] {
    return this.step.graph.batchStats.map((b) => b.layer);
  }

  /** BatchNormalization layers whose moving statistics the model carries as live state (trained or re-estimated). */
  get batchNormLayers(): string[] {
    return [...new Set(this.bindings.slice(this.paramLength).map((b) => (b as StateBinding).layer))];
  }

  private tensors(feeds: Feed[]): Record<string, ortTypes.Tensor> {
    const out: Record<string, ortTypes.Tensor> = {};
    for (const f of feeds) out[f.onnxName] = new this.ort.Tensor('float32', f.value, f.dims);
    return out;
  }

  /**
   * One optimizer step on a batch: `x` holds n preprocessed NHWC images, `labels` their classes, `mixed` (mixup,
   * cutmix) a second label per sample with the weight of the first. `lrScale` multiplies the learning rate.
   */
  async trainBatch(x: Float32Array, labels: Int32Array, lrScale = 1, mixed?: MixedTargets): Promise<BatchResult> {
    const n = labels.length;
    const { graph, session, feeds: stepFeeds, shape } = this.step;
    const mb = graph.batch;
    const px = shape[0] * shape[1] * shape[2];
    const K = this.classes;
    const grads = graph.params.map((p) => new Float32Array(p.dims.reduce((a, b) => a * b, 1)));
    const smooth = this.o.labelSmoothing ?? 0;
    const cw = this.o.classWeights;
    let lossSum = 0;
    let correct = 0;
    let weightSum = 0;
    const params = this.tensors(stepFeeds);
    for (let s = 0; s < n; s += mb) {
      const e = Math.min(n, s + mb);
      // a short last micro-batch is filled with copies of its own samples at weight 0: they add nothing to the
      // loss, and batch statistics (BatchNormalization) see real images rather than zeros
      const xb = new Float32Array(mb * px);
      for (let r = 0; r < mb; r++) xb.set(x.subarray((s + (r % (e - s))) * px, (s + (r % (e - s)) + 1) * px), r * px);
      const onehot = new Float32Array(mb * K);
      const w = new Float32Array(mb);
      for (let i = s; i < e; i++) {
        const r = i - s;
        const lam = mixed ? mixed.lam[i]! : 1;
        for (let k = 0; k < K; k++) onehot[r * K + k] = smooth / K;
        onehot[r * K + labels[i]!]! += lam * (1 - smooth);
        if (mixed) onehot[r * K + mixed.labelsB[i]!]! += (1 - lam) * (1 - smooth);
        w[r] = cw ? lam * cw[labels[i]!]! + (mixed ? (1 - lam) * cw[mixed.labelsB[i]!]! : 0) : 1;
        weightSum += w[r]!;
      }
      const feeds: Record<string, ortTypes.Tensor> = {
        ...params,
        [graph.inputName]: new this.ort.Tensor('float32', xb, [mb, ...shape]),
        [graph.labelsName]: new this.ort.Tensor('float32', onehot, [mb, K]),
        [graph.weightsName]: new this.ort.Tensor('float32', w, [mb]),
      };
      for (const m of graph.masks) {
        const size = m.shape.reduce((a, b) => a * b, 1);
        const keep = 1 / (1 - m.rate);
        const mask = new Float32Array(size);
        for (let i = 0; i < size; i++) mask[i] = this.rng.next() >= m.rate ? keep : 0;
        feeds[m.name] = new this.ort.Tensor('float32', mask, m.shape);
      }
      const out = await session.run(feeds);
      lossSum += (out[graph.lossName]!.data as Float32Array)[0]!;
      const logits = out[graph.logitsName]!.data as Float32Array;
      for (let i = s; i < e; i++) {
        const r = i - s;
        let best = 0;
        for (let k = 1; k < K; k++) if (logits[r * K + k]! > logits[r * K + best]!) best = k;
        // with mixed targets, a hit is the class with the larger share
        if (best === (mixed && mixed.lam[i]! < 0.5 ? mixed.labelsB[i] : labels[i])) correct++;
      }
      graph.params.forEach((p, k) => {
        const gk = out[p.grad]!.data as Float32Array;
        const acc = grads[k]!;
        for (let i = 0; i < acc.length; i++) acc[i]! += gk[i]!;
      });
      this.updateMovingStatistics(out);
    }
    const inv = weightSum > 0 ? 1 / weightSum : 0;
    for (const gk of grads) for (let i = 0; i < gk.length; i++) gk[i]! *= inv;
    this.optimizer.step(grads, lrScale);
    return { lossSum: weightSum > 0 ? (lossSum / weightSum) * n : 0, correct, n };
  }

  /** moving = momentum * moving + (1 - momentum) * batch; the batch variance made unbiased (count / (count - 1)). */
  private updateMovingStatistics(out: ortTypes.InferenceSession.OnnxValueMapType): void {
    for (const st of this.step.graph.batchStats) {
      const moving = this.step.movingStats.get(st.layer)!;
      const mom = this.o.bnMomentum ?? st.momentum;
      const mean = out[st.mean]!.data as Float32Array;
      const variance = out[st.variance]!.data as Float32Array;
      const unbias = st.count > 1 ? st.count / (st.count - 1) : 1;
      for (let c = 0; c < mean.length; c++) {
        moving.mean[c] = mom * moving.mean[c]! + (1 - mom) * mean[c]!;
        moving.variance[c] = mom * moving.variance[c]! + (1 - mom) * variance[c]! * unbias;
      }
    }
  }

  /**
   * Re-estimates the moving statistics of every live BatchNormalization layer (trained, or listed by `bnLive`)
   * from batches of images run with the current weights: the exact mean and variance over all of them, each
   * layer seeing the batch-normalised output of the layers before it (as after stochastic weight averaging).
   */
  async reestimateBatchNorm(batches: AsyncIterable<{ x: Float32Array; n: number }>): Promise<{ layers: number; images: number }> {
    if (this.paramLength === this.bindings.length) return { layers: 0, images: 0 };
    this.statsSession ??= (async () => {
      const build = buildOnnxGraph(this.artifacts, { training: { trainable: this.o.trainable, dropout: false, batchNorm: 'batch', bnLive: this.o.bnLive } });
      const byKeras = new Map(this.bindings.map((b, i) => [b.kerasName, this.current[i]!]));
      const feeds = build.params.map((b) => ({ onnxName: b.onnxName, dims: b.dims, value: byKeras.get(b.kerasName)! }));
      const session = await this.ort.InferenceSession.create(build.graph.toBytes(), sessionOptions(this.threads));
      return { session, feeds, stats: build.batchStats };
    })();
    const { session, feeds, stats } = await this.statsSession;
    const sums = stats.map((st) => ({ st, s1: new Float64Array(st.channels), s2: new Float64Array(st.channels), count: 0 }));
    const px = this.inputShape[0] * this.inputShape[1] * this.inputShape[2];
    const mb = this.step.graph.batch;
    let images = 0;
    for await (const b of batches) {
      for (let s = 0; s < b.n; s += mb) {
        const n = Math.min(mb, b.n - s);
        const out = await session.run({ ...this.tensors(feeds), [session.inputNames[0]!]: new this.ort.Tensor('float32', b.x.subarray(s * px, (s + n) * px), [n, ...this.inputShape]) });
        for (const acc of sums) {
          const mean = out[acc.st.mean]!.data as Float32Array;
          const variance = out[acc.st.variance]!.data as Float32Array;
          const cnt = n * acc.st.perSample;
          for (let c = 0; c < mean.length; c++) {
            acc.s1[c]! += cnt * mean[c]!;
            acc.s2[c]! += cnt * (variance[c]! + mean[c]! * mean[c]!);
          }
          acc.count += cnt;
        }
        images += n;
      }
    }
    if (!images) return { layers: 0, images: 0 };
    for (const acc of sums) {
      const at = (w: string) => this.current[this.bindings.findIndex((b, i) => i >= this.paramLength && (b as StateBinding).layer === acc.st.layer && (b as StateBinding).weight === w)]!;
      const mean = at('moving_mean');
      const variance = at('moving_variance');
      const unbias = acc.count > 1 ? acc.count / (acc.count - 1) : 1;
      for (let c = 0; c < mean.length; c++) {
        const m = acc.s1[c]! / acc.count;
        mean[c] = m;
        variance[c] = Math.max(0, acc.s2[c]! / acc.count - m * m) * unbias;
      }
    }
    return { layers: sums.length, images };
  }

  /** Class probabilities for n preprocessed NHWC images, with the current weights. */
  async predict(x: Float32Array, n: number): Promise<Float32Array> {
    const out = await this.evalSession.run({ ...this.tensors(this.evalFeeds), [this.evalSession.inputNames[0]!]: new this.ort.Tensor('float32', x.subarray(0, n * this.inputShape.reduce((a, b) => a * b, 1)), [n, ...this.inputShape]) });
    return out[this.evalSession.outputNames[0]!]!.data as Float32Array;
  }

  /** Names and shapes of what training changes (trained weights, then BatchNormalization statistics): snapshot()'s layout. */
  get paramSpecs(): Array<{ name: string; dims: number[] }> {
    return this.bindings.map((p) => ({ name: p.kerasName, dims: [...p.dims] }));
  }

  /** Everything training changes: weights and statistics (snapshot()'s layout), optimizer state and the dropout generator (for a checkpoint). */
  getState(): { weights: Float32Array[]; optimizer: { t: number; slots: Float32Array[][] }; rng: number } {
    return { weights: this.current, optimizer: this.optimizer.getState(), rng: this.rng.getState() };
  }

  setState(s: { weights: Float32Array[]; optimizer: { t: number; slots: Float32Array[][] }; rng: number }): void {
    if (s.weights.length !== this.current.length || s.weights.some((w, i) => w.length !== this.current[i]!.length)) throw new Error('checkpoint weights do not match the model');
    this.restore(s.weights);
    this.optimizer.setState(s.optimizer);
    this.rng.setState(s.rng);
  }

  /** A copy of the current weights and BatchNormalization statistics (to keep the best epoch, or average them). */
  snapshot(): Float32Array[] {
    return this.current.map((v) => new Float32Array(v));
  }

  restore(snap: Float32Array[]): void {
    snap.forEach((s, i) => this.current[i]!.set(s));
  }

  /** The model with the current (or given, as from snapshot()) weights, as TF.js layers model artifacts. */
  exportArtifacts(weights: Float32Array[] = this.current): LayersModelArtifacts {
    const all = decodeWeights(this.artifacts);
    this.bindings.forEach((p, i) => {
      const w = all.get(p.kerasName)!;
      all.set(p.kerasName, { ...w, data: p.toKeras(weights[i]!) });
    });
    return { ...this.artifacts, ...encodeWeights([...all.values()]) };
  }

  async close(): Promise<void> {
    const stats = this.statsSession ? [(await this.statsSession).session.release()] : [];
    await Promise.all([this.step.session.release(), this.evalSession.release(), ...stats]);
  }
}
