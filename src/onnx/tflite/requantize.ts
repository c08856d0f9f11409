/**
 * Weights with a zero point (uint8 per-tensor TFLite models) as symmetric int8 per output channel, which
 * onnxruntime's fast integer kernels need (its QLinearConv takes them only with weight zero point 0).
 *
 * A weight q with zero point z is the real value s * (q - z). Where every q - z of an output channel fits int8
 * (|q - z| <= 127), the channel keeps the scale s and the integers q - z: exactly the same real values. Only the
 * channels holding a value out of that range (in the shared uint8 MobileNetV2, 1 to 5 values of a tensor) get a
 * wider scale s * max|q - z| / 127 and rounded integers; the bias of such a channel is divided by the same factor.
 */
export interface SymmetricChannels {
  /** int8 weights, zero point 0, in the tensor's own layout. */
  data: Int8Array;
  /** The scale of every output channel. */
  scales: Float32Array;
  /** Per channel, the new scale over the old one: 1 where the channel is exact. */
  factor: Float64Array;
  /** How many channels were rescaled (not exact). */
  rescaled: number;
}

export function symmetricChannels(raw: Uint8Array | Int8Array, zeroPoint: number, scale: ArrayLike<number>, shape: number[], outAxis: number): SymmetricChannels {
  const n = shape[outAxis]!;
  const inner = shape.slice(outAxis + 1).reduce((a, c) => a * c, 1);
  const chan = (i: number) => Math.floor(i / inner) % n;
  const maxAbs = new Int32Array(n);
  for (let i = 0; i < raw.length; i++) {
    const c = chan(i);
    maxAbs[c] = Math.max(maxAbs[c]!, Math.abs(raw[i]! - zeroPoint));
  }
  const factor = Float64Array.from(maxAbs, (m) => (m <= 127 ? 1 : m / 127));
  const scales = Float32Array.from(factor, (f, c) => (scale.length === 1 ? scale[0]! : scale[c]!) * f);
  const data = new Int8Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const f = factor[chan(i)]!;
    const d = raw[i]! - zeroPoint;
    data[i] = f === 1 ? d : Math.max(-127, Math.min(127, Math.round(d / f)));
  }
  return { data, scales, factor, rescaled: factor.filter((f) => f !== 1).length };
}
