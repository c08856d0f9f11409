/**
 * Kernel fixes for tfjs' WebAssembly backend. Its BatchMatMul is ~10x slower when an operand is transposed
 * (which every Dense layer's gradient asks for), so transposed operands are materialised with the wasm
 * Transpose kernel and the fast non-transposed path is used.
 */
import type * as TF from '@tensorflow/tfjs';

let patched = false;

function transposeLast2(tf: typeof TF, backend: any, x: any): any {
  const r = x.shape.length;
  const perm = [...Array(r).keys()];
  [perm[r - 1], perm[r - 2]] = [perm[r - 2]!, perm[r - 1]!];
  return tf.getKernel('Transpose', 'wasm')!.kernelFunc({ inputs: { x }, attrs: { perm }, backend }) as any;
}

export function patchWasmKernels(tf: typeof TF): void {
  if (patched) return;
  const cfg = tf.getKernel('BatchMatMul', 'wasm');
  if (!cfg) return;
  const original = cfg.kernelFunc;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({
    ...cfg,
    kernelFunc: (args: any) => {
      const { inputs, attrs, backend } = args;
      if (!attrs.transposeA && !attrs.transposeB) return original(args);
      const a = attrs.transposeA ? transposeLast2(tf, backend, inputs.a) : inputs.a;
      const b = attrs.transposeB ? transposeLast2(tf, backend, inputs.b) : inputs.b;
      try {
        return original({ inputs: { a, b }, attrs: { ...attrs, transposeA: false, transposeB: false }, backend });
      } finally {
        if (a !== inputs.a) backend.disposeData(a.dataId);
        if (b !== inputs.b) backend.disposeData(b.dataId);
      }
    },
  });
  patched = true;
}
