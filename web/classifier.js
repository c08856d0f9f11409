// tlearn's in-browser classifier: runs an exported tlearn model with onnxruntime-web (WebAssembly), no server.
//
//   import { load, classify } from './classifier.js';
//   await load('./');                                   // the folder holding model.onnx and metadata.json
//   const { top, unknown } = await classify(imgOrCanvasOrBlob, { top: 3 });
//
// Images are decoded by the browser and resized in JavaScript the way training resizes them (squash or centre
// crop, from metadata.json; see preprocess.js), then scaled as the model's preprocessing says.
import { readProbabilities, resizePixels, rgbaToInput } from './preprocess.js';

let ortModule;
/** onnxruntime-web, loaded once from ./ort/ next to this file. */
async function ort() {
  if (!ortModule) {
    ortModule = import('./ort/ort.wasm.bundle.min.mjs').then((m) => {
      m.env.wasm.wasmPaths = new URL('./ort/', import.meta.url).href;
      // Threads need a cross-origin isolated page (COOP/COEP headers); plain static servers give one thread.
      m.env.wasm.numThreads = globalThis.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
      return m;
    });
  }
  return ortModule;
}

/** A decoded image (ImageBitmap, <img>, <canvas>, <video>, OffscreenCanvas) and its pixel size. */
async function drawable(input) {
  if (input instanceof Blob) {
    const bitmap = await createImageBitmap(input, { imageOrientation: 'from-image' });
    return { source: bitmap, width: bitmap.width, height: bitmap.height, close: () => bitmap.close() };
  }
  if (typeof HTMLImageElement !== 'undefined' && input instanceof HTMLImageElement) {
    if (!input.complete || !input.naturalWidth) await input.decode();
    return { source: input, width: input.naturalWidth, height: input.naturalHeight };
  }
  if (typeof HTMLVideoElement !== 'undefined' && input instanceof HTMLVideoElement) {
    return { source: input, width: input.videoWidth, height: input.videoHeight };
  }
  if (input && typeof input.width === 'number' && typeof input.height === 'number') return { source: input, width: input.width, height: input.height };
  throw new TypeError('classify() takes an image, canvas, video, ImageBitmap or Blob');
}

/**
 * The image resized to width x height as training does, as RGBA bytes: the browser decodes it (applying EXIF
 * orientation), a canvas hands over its pixels at full size, and resizePixels (preprocess.js) resamples them
 * the way tlearn's training decode (sharp/libvips, linear kernel) does.
 */
export async function resizedPixels(input, width, height, resize) {
  const d = await drawable(input);
  try {
    if (!d.width || !d.height) throw new Error('the image has no pixels (not loaded yet?)');
    const canvas = typeof OffscreenCanvas !== 'undefined' ? new OffscreenCanvas(d.width, d.height) : Object.assign(document.createElement('canvas'), { width: d.width, height: d.height });
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    // transparent pixels become white, as in training (src/data/decode.ts composites on white)
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, d.width, d.height);
    ctx.drawImage(d.source, 0, 0, d.width, d.height);
    const full = ctx.getImageData(0, 0, d.width, d.height).data;
    return resizePixels(full, d.width, d.height, 4, width, height, resize);
  } finally {
    d.close?.();
  }
}

export class Classifier {
  constructor(session, metadata) {
    this.session = session;
    this.metadata = metadata;
    this.inputName = session.inputNames[0];
    this.outputName = session.outputNames[0];
  }

  /** Labels, input size, preprocessing, threshold... as exported. */
  get labels() {
    return this.metadata.labels;
  }

  /** The model's input for an image: NHWC float32, resized and scaled as in training. */
  async input(image) {
    const [h, w] = this.metadata.inputSize;
    const rgba = await resizedPixels(image, w, h, this.metadata.resize);
    return rgbaToInput(rgba, this.metadata.preprocessing);
  }

  /**
   * Classifies one image. Options: top (default 5), threshold (default: the model's, chosen on the validation
   * split at training time). Returns { top: [{label, probability}], unknown, probabilities, ms }.
   */
  async classify(image, opts = {}) {
    const t0 = performance.now();
    const x = await this.input(image);
    const [h, w] = this.metadata.inputSize;
    const { Tensor } = await ort();
    const out = await this.session.run({ [this.inputName]: new Tensor('float32', x, [1, h, w, 3]) });
    const probabilities = Array.from(out[this.outputName].data);
    const threshold = opts.threshold ?? this.metadata.threshold?.value ?? 0;
    const r = readProbabilities(probabilities, this.metadata.labels, opts.top ?? 5, threshold);
    return { ...r, probabilities, ms: Math.round((performance.now() - t0) * 100) / 100 };
  }
}

let current;

/**
 * Loads an exported model: `url` is its folder (holding model.onnx and metadata.json; default: this file's
 * folder) or the .onnx file itself (metadata.json next to it).
 */
export async function load(url = new URL('./', import.meta.url).href) {
  const base = new URL(url, document.baseURI);
  const modelUrl = base.pathname.endsWith('.onnx') ? base : new URL('model.onnx', base.href.endsWith('/') ? base : `${base.href}/`);
  const metaUrl = new URL('metadata.json', modelUrl);
  const get = async (u, how) => {
    const res = await fetch(u);
    if (!res.ok) throw new Error(`${u}: HTTP ${res.status}`);
    return res[how]();
  };
  const [{ InferenceSession }, metadata, bytes] = await Promise.all([ort(), get(metaUrl, 'json'), get(modelUrl, 'arrayBuffer')]);
  const session = await InferenceSession.create(new Uint8Array(bytes), { executionProviders: ['wasm'] });
  current = new Classifier(session, metadata);
  return current;
}

/** classify() with the model load() loaded last. */
export async function classify(image, opts) {
  if (!current) throw new Error('call load() before classify()');
  return current.classify(image, opts);
}
