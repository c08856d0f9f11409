// Preprocessing for the browser, matching tlearn's training pipeline (src/backbones/preprocess.ts and the
// squash / centre-crop resize of src/data/decode.ts). Pure functions: no DOM, so Node tests import it too.

/** Per-channel pixel scaling, named as in the model's metadata.json ("preprocessing"). */
const CAFFE_MEAN_BGR = [103.939, 116.779, 123.68];
const TORCH_MEAN = [0.485, 0.456, 0.406];
const TORCH_STD = [0.229, 0.224, 0.225];

export const PREPROCESS_MODES = ['tf', 'caffe', 'torch', 'unit', 'raw'];

/**
 * The source rectangle to draw into a width x height input: the whole image ("squash", what Keras'
 * load_img(target_size) does) or its centred part with the input's aspect ratio ("center-crop").
 */
export function sourceRect(srcWidth, srcHeight, width, height, resize) {
  if (resize !== 'center-crop') return { sx: 0, sy: 0, sw: srcWidth, sh: srcHeight };
  const scale = Math.max(width / srcWidth, height / srcHeight);
  const sw = Math.min(srcWidth, width / scale);
  const sh = Math.min(srcHeight, height / scale);
  return { sx: (srcWidth - sw) / 2, sy: (srcHeight - sh) / 2, sw, sh };
}

/**
 * RGBA pixels (a canvas' ImageData.data, width*height*4) → the model's NHWC float32 input (width*height*3),
 * alpha dropped (as sharp's removeAlpha does), scaled as `mode` says.
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
