import { util, type KernelFunc, type TensorInfo, type SumAttrs } from '@tensorflow/tfjs-core';
import { heapViews } from './heap.ts';

/**
 * Sum over the leading axes (every bias gradient: [N, H, W, C] -> [C]) as one contiguous pass in
 * JavaScript; tfjs's wasm kernel transposes the whole tensor first. Other reductions go to `original`.
 */
export function sum(original: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const { x } = inputs as { x: TensorInfo };
    const { axis, keepDims } = attrs as unknown as SumAttrs;
    const axes = util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const leading = axes.every((a, i) => a === i);
    if (x.dtype !== 'float32' || axes.length === 0 || !leading) return original(args);
    const inner = util.sizeFromShape(x.shape.slice(axes.length));
    const outer = util.sizeFromShape(x.shape.slice(0, axes.length));
    const outShape = keepDims ? x.shape.map((d, i) => (i < axes.length ? 1 : d)) : x.shape.slice(axes.length);
    const {
      out,
      views: [v],
      outView,
    } = heapViews(backend, [x], outShape);
    // float32 partial sums over blocks of 64 rows (four rows per pass over the partials), added into
    // float64 totals: fast and accurate.
    const acc = new Float64Array(inner),
      part = new Float32Array(inner);
    for (let i0 = 0; i0 < outer; i0 += 64) {
      part.fill(0);
      const end = Math.min(outer, i0 + 64);
      let i = i0;
      for (; i + 4 <= end; i += 4) {
        const b0 = i * inner,
          b1 = b0 + inner,
          b2 = b1 + inner,
          b3 = b2 + inner;
        for (let j = 0; j < inner; j++) part[j] += v[b0 + j] + v[b1 + j] + v[b2 + j] + v[b3 + j];
      }
      for (; i < end; i++) {
        const base = i * inner;
        for (let j = 0; j < inner; j++) part[j] += v[base + j];
      }
      for (let j = 0; j < inner; j++) acc[j] += part[j];
    }
    outView.set(acc);
    return out;
  };
}
