import { describe, expect, it } from 'vitest';
import { autoClassWeights, predictHead, trainHead, TrainingError, type LabelledFeatures } from '../src/engine/fit.js';
import { Rng } from '../src/util/rng.js';

/** Gaussian blobs: class c centred at a random point, well separated. */
function blobs(n: number, classes: number, dim: number, seed: number, spread = 0.3): LabelledFeatures {
  const centres = new Rng(99);
  const mu = Array.from({ length: classes }, () => Array.from({ length: dim }, () => centres.normal()));
  const rng = new Rng(seed);
  const x = new Float32Array(n * dim);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % classes;
    y[i] = c;
    for (let d = 0; d < dim; d++) x[i * dim + d] = mu[c]![d]! + rng.normal() * spread;
  }
  return { x, y, dim };
}

describe('trainHead', () => {
  const train = blobs(300, 3, 8, 1);
  const val = blobs(90, 3, 8, 2);

  it('learns separable data, logs Keras-style epochs and keeps the best epoch', async () => {
    const lines: string[] = [];
    const logger = { info: (m: string) => lines.push(m), warn: () => {}, progress: () => ({ tick() {}, done() {} }) };
    const r = await trainHead(train, val, { classes: 3, epochs: 8, batchSize: 32, lr: 0.02, seed: 1, logger });
    expect(r.history).toHaveLength(8);
    expect(lines[0]).toMatch(/^Epoch 1\/8 - \d+\.\ds - loss: \d\.\d{4} - acc: \d\.\d{4} - val_loss: \d\.\d{4} - val_acc: \d\.\d{4}$/);
    expect(r.history.at(-1)!.val_acc).toBeGreaterThan(0.95);
    const best = r.history.reduce((a, b) => (b.val_loss < a.val_loss ? b : a));
    expect(r.bestEpoch).toBe(best.epoch);
    const probs = await predictHead(r.model, val.x, val.dim);
    const sums = Array.from({ length: 90 }, (_, i) => probs.subarray(i * 3, i * 3 + 3).reduce((a, b) => a + b, 0));
    sums.forEach((s) => expect(s).toBeCloseTo(1, 4));
    expect(r.model.layers.at(-1)!.getConfig().activation).toBe('softmax');
  });

  it('is deterministic for a seed, including the MLP head with dropout', async () => {
    const opts = { classes: 3, epochs: 3, batchSize: 16, seed: 5, kind: 'mlp' as const, hidden: 16, dropout: 0.3 };
    const a = await trainHead(train, val, opts);
    const b = await trainHead(train, val, opts);
    expect(a.history.map((h) => h.loss)).toEqual(b.history.map((h) => h.loss));
    const c = await trainHead(train, val, { ...opts, seed: 6 });
    expect(c.history.map((h) => h.loss)).not.toEqual(a.history.map((h) => h.loss));
    expect(a.model.layers.map((l) => l.getClassName())).toEqual(['Dense', 'Dropout', 'Dense']);
  });

  it('every optimizer trains; sgd gets momentum 0.9 by default', async () => {
    const lr = { adam: 0.02, sgd: 0.1, rmsprop: 0.02, adadelta: undefined };
    for (const optimizer of ['adam', 'sgd', 'rmsprop', 'adadelta'] as const) {
      const r = await trainHead(train, val, { classes: 3, epochs: 4, batchSize: 32, optimizer, lr: lr[optimizer], seed: 2 });
      expect(r.history.at(-1)!.val_acc, optimizer).toBeGreaterThan(0.8);
      if (optimizer === 'sgd') expect(r.options.momentum).toBe(0.9);
    }
  });

  it('early stopping stops after `patience` epochs without a lower val_loss, keeping the best epoch', async () => {
    // validation labels rotated by one class: the better the head fits train, the worse val_loss gets
    const wrong = { ...val, y: val.y.map((c) => (c + 1) % 3) as Int32Array };
    const r = await trainHead(train, wrong, { classes: 3, epochs: 30, batchSize: 32, lr: 0.02, patience: 2, seed: 3 });
    expect(r.stoppedEarly).toBe(true);
    expect(r.bestEpoch).toBe(1);
    expect(r.history).toHaveLength(3);
  });

  it('class weights, label smoothing and weight decay are applied', async () => {
    const y = new Int32Array([0, 0, 0, 1]);
    expect(autoClassWeights(y, 3)).toEqual([4 / 9, 4 / 3, 0]);
    const plain = await trainHead(train, val, { classes: 3, epochs: 2, seed: 4 });
    const smooth = await trainHead(train, val, { classes: 3, epochs: 2, seed: 4, labelSmoothing: 0.2 });
    expect(smooth.history[1]!.loss).toBeGreaterThan(plain.history[1]!.loss);
    const decayed = await trainHead(train, val, { classes: 3, epochs: 2, seed: 4, weightDecay: 0.5, lr: 0.01 });
    const norm = (m: typeof plain.model) => m.getWeights()[0]!.square().sum().dataSync()[0]!;
    expect(norm(decayed.model)).toBeLessThan(norm(plain.model));
    const weighted = await trainHead(train, val, { classes: 3, epochs: 2, seed: 4, classWeights: 'auto' });
    expect(weighted.options.classWeights).toEqual([1, 1, 1]);
  });

  it('rejects bad hyperparameters with a clear error', async () => {
    await expect(trainHead(train, val, { classes: 3, epochs: 0 })).rejects.toThrow(/--epochs must be a positive integer/);
    await expect(trainHead(train, val, { classes: 3, lr: -1 })).rejects.toThrow(TrainingError);
    await expect(trainHead(train, val, { classes: 3, labelSmoothing: 1 })).rejects.toThrow(/--label-smoothing/);
    await expect(trainHead(train, val, { classes: 3, kind: 'mlp', hidden: 0 })).rejects.toThrow(/--hidden/);
    await expect(trainHead({ x: new Float32Array(0), y: new Int32Array(0), dim: 8 }, val, { classes: 3 })).rejects.toThrow(/no training images/);
  });
});
