/** End-to-end runs on the real data in ../shared (skipped with a message when it is absent). */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { exportClassifier } from '../src/export/export.js';
import { checkPage, hasChromium } from './browser.js';
import { describe, expect, it } from 'vitest';
import { loadClassifier } from '../src/classifier/load.js';
import { predictImages } from '../src/classifier/predict.js';
import { trainFromFolder } from '../src/train/run.js';
import { CALTECH, CALTECH_EXCLUDE, HYMENOPTERA, MOBILENET, TM_EXPORT, hasShared, tmpDir } from './helpers.js';

describe.runIf(hasShared(CALTECH, 'Caltech-97 end-to-end test') && hasShared(MOBILENET, 'Caltech-97 end-to-end test'))('Caltech-97 with MobileNetV2-0.35 (the notebook\'s task)', () => {
  it('reaches >= 0.86 test accuracy (within 0.5 points of 0.8870) in the notebook\'s 10 epochs; the default run (40 epochs) reads the features cache, does better and is calibrated', async () => {
    const opts = { data: CALTECH, exclude: CALTECH_EXCLUDE, backbone: MOBILENET, epochs: 10, seed: 42 };
    const a = await trainFromFolder({ ...opts, out: path.join(tmpDir(), 'a') });
    expect(a.metrics.dataset.classes).toBe(97);
    expect(a.metrics.dataset.images).toBe(6209);
    expect(a.metrics.features.computed).toBe(6209);
    expect(a.metrics.test.accuracy).toBeGreaterThanOrEqual(0.86);
    // the libjpeg-turbo + WebAssembly decoder (issue 12) stays within 0.5 points of the sharp decoder's 0.8870
    expect(Math.abs(a.metrics.test.accuracy - 0.887)).toBeLessThanOrEqual(0.005);
    // temperature scaling, fitted on validation, halves the test ECE: 0.064 -> 0.025 with the legacy sharp decoder,
    // 0.066 -> 0.033 with the libjpeg-turbo + WebAssembly one (931 test images: ECE moves by a few thousandths
    // when a handful of confident predictions change bins)
    expect(a.metrics.calibration.method).toBe('temperature');
    expect(a.metrics.calibration.test.before.ece).toBeGreaterThan(0.05);
    expect(a.metrics.test.ece).toBeLessThanOrEqual(0.035);
    expect(a.metrics.test.confusion).toHaveLength(97);
    // the default transfer run (40 head epochs, chosen on validation; issue 13): features from the cache,
    // better accuracy and a test ECE after temperature scaling <= 0.03 (measured: 0.8945, ECE 0.066 -> 0.019)
    const { epochs: _notebookEpochs, ...defaults } = opts;
    const b = await trainFromFolder({ ...defaults, out: path.join(tmpDir(), 'b') });
    expect(b.metrics.features.computed).toBe(0);
    expect(b.metrics.training.epochs).toBe(40);
    expect(b.metrics.test.accuracy).toBeGreaterThanOrEqual(a.metrics.test.accuracy);
    expect(b.metrics.test.ece).toBeLessThanOrEqual(0.03);
    const clf = await loadClassifier(a.outDir);
    const p = await predictImages(clf, [path.join(CALTECH, 'airplanes', 'image_0003.jpg')]);
    expect(p.predictions[0]!.top).toHaveLength(5);
    expect(p.predictions[0]!.top.reduce((s, t) => s + t.probability, 0)).toBeLessThanOrEqual(1 + 1e-6);

    // the ONNX export agrees with predict on the run folder for every test image
    const exp = await exportClassifier(a.outDir, { format: 'onnx' });
    const split = JSON.parse(await fs.readFile(path.join(a.outDir, 'split.json'), 'utf8'));
    const testFiles = split.test.map((e: [string, number]) => path.join(CALTECH, e[0]));
    expect(testFiles.length).toBeGreaterThan(900);
    const fromRun = await predictImages(clf, testFiles);
    const fromOnnx = await predictImages(await loadClassifier(exp.files[0]!), testFiles);
    expect(fromOnnx.predictions).toHaveLength(testFiles.length);
    let maxDiff = 0;
    fromOnnx.predictions.forEach((q, i) => {
      const r = fromRun.predictions[i]!;
      expect(q.path).toBe(r.path);
      expect(q.top[0]!.label).toBe(r.top[0]!.label);
      q.probabilities.forEach((v, k) => (maxDiff = Math.max(maxDiff, Math.abs(v - r.probabilities[k]!))));
    });
    // the calibrated probabilities: the export and predict agree to 1e-5
    expect(maxDiff).toBeLessThanOrEqual(1e-5);

    // the report: one file under 15 MB, 97x97 confusion cells, a gallery of real test images
    const html = await fs.readFile(a.report.html, 'utf8');
    expect((await fs.stat(a.report.html)).size).toBeLessThan(15e6);
    expect(html.match(/class="cm-cell"/g)).toHaveLength(97 * 97);
    const galleryNames = [...html.matchAll(/<figure class="wrong"><img src="data:image\/jpeg;base64,[^"]+" alt="([^"]+)">/g)].map((m) => m[1]);
    expect(galleryNames.length).toBeGreaterThan(10);
    const testNames = new Set(split.test.map((e: [string, number]) => path.basename(e[0])));
    for (const m of html.matchAll(/<span style="color:#888">([^<]+)<\/span>/g)) expect(testNames.has(m[1]!)).toBe(true);
    if (hasChromium()) {
      const page = await checkPage(a.report.html, 'caltech97-report.png', `document.querySelectorAll('.cm-cell').length`);
      expect(page.consoleErrors).toEqual([]);
      expect(page.requests).toEqual([]);
      expect(page.result).toBe(97 * 97);
      console.log(`Caltech-97 report screenshot: ${page.screenshot}`);
    }
  }, 420_000); // two cold/warm Caltech-97 runs and ~1,900 predictions: 72 s on a quiet 2-core machine, more under load
});

describe.runIf(hasShared(HYMENOPTERA, 'ants/bees end-to-end test') && hasShared(MOBILENET, 'ants/bees end-to-end test'))('ants vs bees (pre-split, big photos)', () => {
  it('holds out val/ as the test split and classifies well', async () => {
    const r = await trainFromFolder({ data: HYMENOPTERA, backbone: MOBILENET, epochs: 10, seed: 1, out: path.join(tmpDir(), 'h') });
    expect(r.metrics.dataset.split!.test).toBe(153);
    expect(r.metrics.dataset.split!.train + r.metrics.dataset.split!.val).toBe(245);
    expect(r.metrics.test.accuracy).toBeGreaterThan(0.85);
  });
});

describe.runIf(hasShared(TM_EXPORT, 'Teachable Machine predict test') && hasShared(CALTECH, 'Teachable Machine predict test'))('Teachable Machine export', () => {
  it('predict works on the export itself, with its labels', async () => {
    const clf = await loadClassifier(TM_EXPORT);
    expect(clf.metadata.labels).toEqual(['normal', 'idol']);
    expect(clf.metadata.resize).toBe('center-crop');
    const p = await predictImages(clf, [path.join(CALTECH, 'Faces', 'image_0001.jpg')]);
    const probs = p.predictions[0]!.probabilities;
    expect(probs).toHaveLength(2);
    expect(probs[0]! + probs[1]!).toBeCloseTo(1, 5);
  });
});
