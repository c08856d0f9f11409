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
import { buildOnnxGraph } from '../onnx/convert.js';
import type { ParamBinding } from '../onnx/context.js';
import { Rng } from '../util/rng.js';
import { buildTrainingGraph, type TrainingGraph } from './grad/builder.js';
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

export class OnnxTrainer {
  private constructor(
    private readonly ort: Ort,
    private readonly artifacts: LayersModelArtifacts,
    private readonly o: OnnxTrainerOptions,
    private readonly graph: TrainingGraph,
    private readonly train: ortTypes.InferenceSession,
    private readonly evalSession: ortTypes.InferenceSession,
    private readonly bindings: ParamBinding[],
    readonly values: Float32Array[],
    private readonly optimizer: JsOptimizer,
    readonly inputShape: [number, number, number],
    readonly classes: number,
    private readonly rng: Rng,
  ) {}

  static async create(artifacts: LayersModelArtifacts, o: OnnxTrainerOptions): Promise<OnnxTrainer> {
    const ort = await import('onnxruntime-node');
    const trainBuild = buildOnnxGraph(artifacts, { training: { trainable: o.trainable }, logits: true });
    if (!trainBuild.params.length) throw new Error('no trainable weights selected');
    const inShape = trainBuild.kerasInputShape.slice(1) as [number, number, number];
    const graph = buildTrainingGraph(trainBuild, o.microBatch);
    const evalBuild = buildOnnxGraph(artifacts, { training: { trainable: o.trainable, dropout: false } });
    const threads = o.threads ?? Math.max(1, os.availableParallelism());
    const [train, evalSession] = await Promise.all([
      ort.InferenceSession.create(graph.bytes, sessionOptions(threads)),
      // no memory arena for evaluation: its activations are freed after each run instead of staying reserved
      // beside the training session's (compare's peak memory is the two together)
      ort.InferenceSession.create(evalBuild.graph.toBytes(), sessionOptions(threads, false)),
    ]);
    const values = trainBuild.params.map((p) => new Float32Array(p.initial));
    const optimizer = new JsOptimizer(
      { name: o.optimizer, lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay },
      trainBuild.params.map((p, i) => ({ value: values[i]!, decay: /kernel$/.test(p.kerasName), lrScale: o.lrMultiplier?.(p.kerasName) ?? 1 })),
    );
    const classes = graph.params.length ? (trainBuild.kerasOutputShape[1] as number) : 0;
    return new OnnxTrainer(ort, artifacts, o, graph, train, evalSession, trainBuild.params, values, optimizer, inShape, classes, new Rng(o.seed));
  }

  get paramCount(): number {
    return this.values.reduce((a, v) => a + v.length, 0);
  }

  get lr(): number {
    return this.optimizer.lr;
  }

  private paramFeeds(): Record<string, ortTypes.Tensor> {
    const feeds: Record<string, ortTypes.Tensor> = {};
    this.bindings.forEach((p, i) => (feeds[p.onnxName] = new this.ort.Tensor('float32', this.values[i]!, p.dims)));
    return feeds;
  }

  /**
   * One optimizer step on a batch: `x` holds n preprocessed NHWC images, `labels` their classes.
   * `lrScale` multiplies the learning rate (for schedules).
   */
  async trainBatch(x: Float32Array, labels: Int32Array, lrScale = 1): Promise<BatchResult> {
    const n = labels.length;
    const mb = this.graph.batch;
    const px = this.inputShape[0] * this.inputShape[1] * this.inputShape[2];
    const K = this.classes;
    const grads = this.graph.params.map((p) => new Float32Array(p.dims.reduce((a, b) => a * b, 1)));
    const smooth = this.o.labelSmoothing ?? 0;
    const cw = this.o.classWeights;
    let lossSum = 0;
    let correct = 0;
    let weightSum = 0;
    const params = this.paramFeeds();
    for (let s = 0; s < n; s += mb) {
      const e = Math.min(n, s + mb);
      const xb = new Float32Array(mb * px);
      xb.set(x.subarray(s * px, e * px));
      const onehot = new Float32Array(mb * K);
      const w = new Float32Array(mb);
      for (let i = s; i < e; i++) {
        const r = i - s;
        for (let k = 0; k < K; k++) onehot[r * K + k] = smooth / K;
        onehot[r * K + labels[i]!]! += 1 - smooth;
        w[r] = cw ? cw[labels[i]!]! : 1;
        weightSum += w[r]!;
      }
      const feeds: Record<string, ortTypes.Tensor> = {
        ...params,
        [this.graph.inputName]: new this.ort.Tensor('float32', xb, [mb, ...this.inputShape]),
        [this.graph.labelsName]: new this.ort.Tensor('float32', onehot, [mb, K]),
        [this.graph.weightsName]: new this.ort.Tensor('float32', w, [mb]),
      };
      for (const m of this.graph.masks) {
        const size = m.shape.reduce((a, b) => a * b, 1);
        const keep = 1 / (1 - m.rate);
        const mask = new Float32Array(size);
        for (let i = 0; i < size; i++) mask[i] = this.rng.next() >= m.rate ? keep : 0;
        feeds[m.name] = new this.ort.Tensor('float32', mask, m.shape);
      }
      const out = await this.train.run(feeds);
      lossSum += (out[this.graph.lossName]!.data as Float32Array)[0]!;
      const logits = out[this.graph.logitsName]!.data as Float32Array;
      for (let i = s; i < e; i++) {
        const r = i - s;
        let best = 0;
        for (let k = 1; k < K; k++) if (logits[r * K + k]! > logits[r * K + best]!) best = k;
        if (best === labels[i]) correct++;
      }
      this.graph.params.forEach((p, k) => {
        const gk = out[p.grad]!.data as Float32Array;
        const acc = grads[k]!;
        for (let i = 0; i < acc.length; i++) acc[i]! += gk[i]!;
      });
    }
    const inv = weightSum > 0 ? 1 / weightSum : 0;
    for (const gk of grads) for (let i = 0; i < gk.length; i++) gk[i]! *= inv;
    this.optimizer.step(grads, lrScale);
    return { lossSum: weightSum > 0 ? (lossSum / weightSum) * n : 0, correct, n };
  }

  /** Class probabilities for n preprocessed NHWC images, with the current weights. */
  async predict(x: Float32Array, n: number): Promise<Float32Array> {
    const out = await this.evalSession.run({ ...this.paramFeeds(), [this.evalSession.inputNames[0]!]: new this.ort.Tensor('float32', x.subarray(0, n * this.inputShape.reduce((a, b) => a * b, 1)), [n, ...this.inputShape]) });
    return out[this.evalSession.outputNames[0]!]!.data as Float32Array;
  }

  /** A copy of the current weights (to keep the best epoch). */
  snapshot(): Float32Array[] {
    return this.values.map((v) => new Float32Array(v));
  }

  restore(snap: Float32Array[]): void {
    snap.forEach((s, i) => this.values[i]!.set(s));
  }

  /** The model with the current (or given) weights, as TF.js layers model artifacts. */
  exportArtifacts(weights: Float32Array[] = this.values): LayersModelArtifacts {
    const all = decodeWeights(this.artifacts);
    this.bindings.forEach((p, i) => {
      const w = all.get(p.kerasName)!;
      all.set(p.kerasName, { ...w, data: p.toKeras(weights[i]!) });
    });
    return { ...this.artifacts, ...encodeWeights([...all.values()]) };
  }

  async close(): Promise<void> {
    await Promise.all([this.train.release(), this.evalSession.release()]);
  }
}
