import {
  backend_util,
  util,
  type KernelFunc,
  type TensorInfo,
  type Conv2DBackpropFilterAttrs,
} from '@tensorflow/tfjs-core';
import { composed, type KernelScope } from './wasm-ops.ts';
import { heapViews } from './heap.ts';
import { DIRECT_DW_CO_MULTIPLE, runDirectDw } from './direct-conv2d-backprop-filter.ts';

/**
 * dW for a 2-D convolution on the wasm backend, which lacks this kernel (tensorflow/tfjs#8474). Stride 1 with
 * output channels a multiple of 8 (every preset's layers) runs the direct SIMD kernel
 * (direct-conv2d-backprop-filter.ts); other shapes run one forward (XNNPACK) convolution with the batch as
 * the reduction channel:
 *
 *   dW[kh, kw, ci, co] = sum over n, oh, ow of xPadded[n, oh*s + kh, ow*s + kw, ci] * dy[n, oh, ow, co]
 *
 * - `x-input`: input x^T = [Ci, H, W, N], filter dy^T = [OH, OW, N, Co] dilated by the stride, the forward
 *   padding on top/left and whatever bottom/right padding (or crop) gives KH x KW; out [Ci, KH, KW, Co].
 * - `dy-input` (stride 1 only): input dy^T = [Co, OH, OW, N], filter x^T = [H, W, N, Ci], padded by
 *   KH-1-top / H-OH+top; out [Co, KH, KW, Ci] flipped in space.
 * XNNPACK packs the filter on every call, so the smaller of x and dy is made the filter.
 */
export function conv2DBackpropFilterPath(
  x: TensorInfo,
  dy: TensorInfo,
  strides: number | [number, number],
): 'direct' | 'x-input' | 'dy-input' {
  const [sh, sw] = typeof strides === 'number' ? [strides, strides] : strides;
  if (sh !== 1 || sw !== 1) return 'x-input';
  if (dy.shape[3] % DIRECT_DW_CO_MULTIPLE === 0) return 'direct';
  return util.sizeFromShape(x.shape) < util.sizeFromShape(dy.shape) ? 'dy-input' : 'x-input';
}

export const conv2DBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
  if (dataFormat !== undefined && dataFormat !== 'NHWC')
    throw new Error(`Conv2DBackpropFilter on wasm supports NHWC only, got ${dataFormat}.`);
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const [, H, W] = x.shape;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw, outHeight: OH, outWidth: OW } = info;
  const { top, left } = info.padInfo;
  const path = conv2DBackpropFilterPath(x, dy, strides);
  if (path === 'direct') {
    const {
      out,
      views: [xv, dyv],
      outView,
    } = heapViews(backend, [x, dy], [KH, KW, info.inChannels, info.outChannels]);
    outView.fill(0);
    runDirectDw(backend, { x: xv.byteOffset, dy: dyv.byteOffset, out: outView.byteOffset }, x, dy, KH, KW, top, left);
    return out;
  }
  return composed(backend, (s) => {
    if (path === 'dy-input') {
      const dyT = batchLast(s, dy); // [Co, OH, OW, N]
      const xF = s.run('Transpose', { x }, { perm: [1, 2, 0, 3] }); // [H, W, N, Ci]
      const explicit = [
        [0, 0],
        [KH - 1 - top, H - OH + top],
        [KW - 1 - left, W - OW + left],
        [0, 0],
      ];
      const flipped = s.run(
        'Conv2D',
        { x: dyT, filter: xF },
        { strides: [1, 1], pad: explicit, dataFormat: 'NHWC', dilations: [1, 1] },
      ); // [Co, KH, KW, Ci]
      const out = s.run('Reverse', { x: flipped }, { dims: [1, 2] });
      return s.final('Transpose', { x: out }, { perm: [1, 2, 3, 0] });
    }
    // Rows/columns of the (padded) input that the forward pass read: (O-1)*s + K, starting at -top/-left.
    const bottom = (OH - 1) * sh + KH - top - H;
    const right = (OW - 1) * sw + KW - left - W;
    let xT = batchLast(s, x); // [Ci, H, W, N]
    if (bottom < 0 || right < 0) {
      // The forward pass never read the last rows/columns: crop them instead of padding negatively.
      xT = s.run(
        'Slice',
        { x: xT },
        { begin: [0, 0, 0, 0], size: [xT.shape[0], H + Math.min(bottom, 0), W + Math.min(right, 0), xT.shape[3]] },
      );
    }
    const dyT = s.run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] }); // [OH, OW, N, Co]
    const explicit = [
      [0, 0],
      [top, Math.max(bottom, 0)],
      [left, Math.max(right, 0)],
      [0, 0],
    ];
    const dwT = s.run(
      'Conv2D',
      { x: xT, filter: dyT },
      { strides: [1, 1], pad: explicit, dataFormat: 'NHWC', dilations: [sh, sw] },
    ); // [Ci, KH, KW, Co]
    return s.final('Transpose', { x: dwT }, { perm: [1, 2, 0, 3] });
  });
};

/**
 * [N, H, W, C] -> [C, H, W, N] as a 2-D transpose ([N, HWC] -> [HWC, N]) and a transpose of whole
 * N-float rows ([HW, C, N] -> [C, HW, N]): about twice as fast on wasm as the one 4-D permutation.
 */
function batchLast(s: KernelScope, t: TensorInfo): TensorInfo {
  const [N, H, W, C] = t.shape;
  const flat = s.run('Transpose', { x: { ...t, shape: [N, H * W * C] } }, { perm: [1, 0] });
  const rows = s.run('Transpose', { x: { ...flat, shape: [H * W, C, N] } }, { perm: [1, 0, 2] });
  return { ...rows, shape: [C, H, W, N] };
}
