// Preprocessing for the browser, matching tlearn's training pipeline: the squash / centre-crop resize of
// src/data/decode.ts (sharp, i.e. libvips with the linear kernel) and the pixel scaling of
// src/backbones/preprocess.ts. Pure functions: no DOM, so Node tests import it too.

/** Per-channel pixel scaling, named as in the model's metadata.json ("preprocessing"). */
const CAFFE_MEAN_BGR = [103.939, 116.779, 123.68];
const TORCH_MEAN = [0.485, 0.456, 0.406];
const TORCH_STD = [0.229, 0.224, 0.225];

export const PREPROCESS_MODES = ['tf', 'caffe', 'torch', 'unit', 'raw'];

/**
 * RGBA pixels (a canvas' ImageData.data, width*height*4) → the model's NHWC float32 input (width*height*3),
 * alpha dropped (classifier.js draws on white first, so transparent pixels are white, as in training), scaled as
 * `mode` says.
 */
export function rgbaToInput(rgba, mode, out = new Float32Array((rgba.length / 4) * 3), offset = 0) {
  const n = rgba.length / 4;
  for (let i = 0; i < n; i++) {
    const r = rgba[4 * i];
    const g = rgba[4 * i + 1];
    const b = rgba[4 * i + 2];
    const o = offset + 3 * i;
    switch (mode) {
      case 'tf':
        out[o] = r / 127.5 - 1;
        out[o + 1] = g / 127.5 - 1;
        out[o + 2] = b / 127.5 - 1;
        break;
      case 'unit':
        out[o] = r / 255;
        out[o + 1] = g / 255;
        out[o + 2] = b / 255;
        break;
      case 'raw':
        out[o] = r;
        out[o + 1] = g;
        out[o + 2] = b;
        break;
      case 'caffe':
        out[o] = b - CAFFE_MEAN_BGR[0];
        out[o + 1] = g - CAFFE_MEAN_BGR[1];
        out[o + 2] = r - CAFFE_MEAN_BGR[2];
        break;
      case 'torch':
        out[o] = (r / 255 - TORCH_MEAN[0]) / TORCH_STD[0];
        out[o + 1] = (g / 255 - TORCH_MEAN[1]) / TORCH_STD[1];
        out[o + 2] = (b / 255 - TORCH_MEAN[2]) / TORCH_STD[2];
        break;
      default:
        throw new Error(`unknown preprocessing '${mode}'`);
    }
  }
  return out;
}

/** The top k {label, probability} of a row of probabilities, and whether the best is under the threshold. */
export function readProbabilities(probs, labels, k, threshold) {
  const order = Array.from(probs, (p, i) => i).sort((a, b) => probs[b] - probs[a]);
  const top = order.slice(0, Math.min(k, labels.length)).map((i) => ({ label: labels[i], probability: probs[i] }));
  return { top, unknown: probs[order[0]] < threshold };
}

/**
 * Resamples packed RGBA (or RGB: `channels`) pixels along one axis to `outLen`, as libvips' resize does for
 * its "linear" kernel: a downsize averages with a triangle filter stretched by the shrink factor (anti-aliased),
 * an upsize interpolates bilinearly; pixel centres are aligned, edges extend, results round to 8 bits.
 */
function resampleAxis(src, width, height, channels, outLen, horizontal, factor) {
  const inLen = horizontal ? width : height;
  // Large reductions first average blocks of k pixels (libvips' shrink), leaving at most ~2x to the filter.
  const k = Math.floor(inLen / outLen / 2);
  if (k >= 2) {
    const shrunk = boxShrink(src, width, height, channels, k, horizontal);
    return resampleAxis(shrunk.px, shrunk.width, shrunk.height, channels, outLen, horizontal, factor && factor / k);
  }
  const outW = horizontal ? outLen : width;
  const outH = horizontal ? height : outLen;
  const out = new Uint8ClampedArray(outW * outH * channels);
  // Input pixels per output pixel: the exact resize factor when given (center-crop scales both axes by one
  // factor, so the rounded output size is not the factor), else the size ratio.
  const scale = factor ?? inLen / outLen;
  // Downsizing: a triangle filter stretched by the shrink factor around the output pixel's centre.
  // Upsizing: bilinear interpolation at o * scale - 0.5 (what libvips does for the linear kernel).
  const support = Math.max(1, scale);
  const starts = new Int32Array(outLen);
  const taps = Math.ceil(support) * 2 + 1;
  const weights = new Float64Array(outLen * taps);
  for (let o = 0; o < outLen; o++) {
    const centre = scale > 1 ? (o + 0.5) * scale - 0.5 : o * scale - 0.5;
    const first = Math.floor(centre - support) + 1;
    starts[o] = first;
    let sum = 0;
    for (let t = 0; t < taps; t++) {
      const w = Math.max(0, 1 - Math.abs(first + t - centre) / support);
      weights[o * taps + t] = w;
      sum += w;
    }
    for (let t = 0; t < taps; t++) weights[o * taps + t] /= sum;
  }
  const strideIn = horizontal ? channels : width * channels;
  const lineIn = horizontal ? width * channels : channels;
  const strideOut = horizontal ? channels : outW * channels;
  const lineOut = horizontal ? outW * channels : channels;
  const lines = horizontal ? height : width;
  const acc = new Float64Array(channels);
  for (let l = 0; l < lines; l++) {
    for (let o = 0; o < outLen; o++) {
      acc.fill(0);
      for (let t = 0; t < taps; t++) {
        const w = weights[o * taps + t];
        if (w === 0) continue;
        const i = Math.min(inLen - 1, Math.max(0, starts[o] + t));
        const p = l * lineIn + i * strideIn;
        for (let c = 0; c < channels; c++) acc[c] += w * src[p + c];
      }
      const q = l * lineOut + o * strideOut;
      for (let c = 0; c < channels; c++) out[q + c] = Math.round(acc[c]);
    }
  }
  return out;
}

/** Averages blocks of k pixels along one axis (the last partial block repeats the edge pixel). */
function boxShrink(src, width, height, channels, k, horizontal) {
  const inLen = horizontal ? width : height;
  const outLen = Math.ceil(inLen / k);
  const w = horizontal ? outLen : width;
  const h = horizontal ? height : outLen;
  const px = new Uint8ClampedArray(w * h * channels);
  const lines = horizontal ? height : width;
  for (let l = 0; l < lines; l++) {
    for (let o = 0; o < outLen; o++) {
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        for (let j = 0; j < k; j++) {
          const i = Math.min(inLen - 1, o * k + j);
          sum += src[(horizontal ? l * width + i : i * width + l) * channels + c];
        }
        px[(horizontal ? l * w + o : o * w + l) * channels + c] = Math.round(sum / k);
      }
    }
  }
  return { px, width: w, height: h };
}

/**
 * Resizes decoded pixels (width x height, `channels` per pixel) to outWidth x outHeight the way tlearn's
 * training decode does with sharp (libvips, linear kernel): "squash" stretches the whole image, "center-crop"
 * scales it to cover the output and keeps the centre. Vertical pass first, then horizontal.
 */
export function resizePixels(src, width, height, channels, outWidth, outHeight, resize) {
  let w = outWidth;
  let h = outHeight;
  let factor;
  if (resize === 'center-crop') {
    const scale = Math.max(outWidth / width, outHeight / height);
    factor = 1 / scale;
    w = Math.max(outWidth, Math.round(width * scale));
    h = Math.max(outHeight, Math.round(height * scale));
  }
  let px = src;
  // libvips' order: reductions (vertical, then horizontal), then one affine enlargement of both axes, whose
  // sampling at o * scale - 0.5 also shifts an axis that keeps its size by half a pixel.
  let cw = width;
  let ch = height;
  const fh = factor ?? width / w;
  const fv = factor ?? height / h;
  if (h < ch) px = resampleAxis(px, cw, ch, channels, (ch = h), false, fv);
  if (w < cw) px = resampleAxis(px, cw, ch, channels, (cw = w), true, fh);
  if (w > cw || h > ch) {
    px = resampleAxis(px, cw, ch, channels, w, true, w > cw ? fh : 1);
    px = resampleAxis(px, w, ch, channels, h, false, h > ch ? fv : 1);
  }
  if (w === outWidth && h === outHeight) return px;
  const left = Math.ceil((w - outWidth) / 2);
  const top = Math.ceil((h - outHeight) / 2);
  const out = new Uint8ClampedArray(outWidth * outHeight * channels);
  for (let y = 0; y < outHeight; y++) out.set(px.subarray(((top + y) * w + left) * channels, ((top + y) * w + left + outWidth) * channels), y * outWidth * channels);
  return out;
}
