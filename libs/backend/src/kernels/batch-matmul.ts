import type { KernelFunc, TensorInfo, BatchMatMulAttrs } from '@tensorflow/tfjs-core';
import { composed } from './wasm-ops.ts';

/**
 * 2-D matrix products with transposed operands, rewritten as untransposed products. The wasm backend
 * runs `a x b` through XNNPACK (~14 GMAC/s here; the right operand is packed first) but `a^T x b`
 * and `a x b^T` — every dense layer's gradient — through a plain loop (~0.6-1 GMAC/s).
 * - a^T x b   = transpose(a) x b
 * - a x b^T   = a x transpose(b), or (b x a^T)^T when that moves fewer elements (dX = dY W^T: it
 *   transposes the batch-sized matrices instead of the weight matrix)
 * - a^T x b^T = (b x a)^T
 * Other ranks go to `original` unchanged.
 */
export function batchMatMul(original: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = attrs as unknown as BatchMatMulAttrs;
    if ((!transposeA && !transposeB) || a.shape.length !== 2 || b.shape.length !== 2) return original(args);
    return composed(backend, (s) => {
      const T = (t: TensorInfo, final = false) =>
        (final ? s.final : s.run).call(s, 'Transpose', { x: t }, { perm: [1, 0] });
      const mm = (x: TensorInfo, y: TensorInfo, final = false) =>
        (final ? s.final : s.run).call(s, original, { a: x, b: y }, { transposeA: false, transposeB: false });
      if (transposeA && transposeB) return T(mm(b, a), true);
      if (transposeA) return mm(T(a), b, true);
      const [M, K] = a.shape,
        N = b.shape[0];
      // Elements moved: transpose + pack of b, against transpose + pack of a and the result's transpose.
      if (2 * N * K <= 2 * M * K + M * N) return mm(a, T(b), true);
      return T(mm(b, T(a)), true);
    });
  };
}
