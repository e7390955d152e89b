import { backend_util, type KernelFunc, type TensorInfo, type Conv2DBackpropInputAttrs } from '@tensorflow/tfjs-core';
import { composed } from './wasm-ops.ts';

/**
 * dx for a stride-1 2-D convolution as one forward (XNNPACK) convolution: with the filter flipped in
 * space and its channels swapped, W'[kh, kw, co, ci] = W[KH-1-kh, KW-1-kw, ci, co],
 * dx = conv(dy, W') padded by KH-1-top on top and KH-1-bottom at the bottom (likewise for columns).
 * tfjs's own wasm kernel is a plain loop about 10x slower. Strided or dilated convolutions, NCHW and
 * paddings larger than the filter go to `fallback` (the original kernel).
 */
export function conv2DBackpropInput(fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as Conv2DBackpropInputAttrs;
    const info = backend_util.computeConv2DInfo(
      inputShape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    const {
      filterHeight: KH,
      filterWidth: KW,
      strideHeight,
      strideWidth,
      inHeight: H,
      inWidth: W,
      outHeight: OH,
      outWidth: OW,
    } = info;
    const { top, left } = info.padInfo;
    // dx has H rows: (OH + padTop + bottom) - KH + 1 = H.
    const padTop = KH - 1 - top,
      padLeft = KW - 1 - left;
    const bottom = H - OH + top,
      right = W - OW + left;
    if (
      strideHeight !== 1 ||
      strideWidth !== 1 ||
      (dataFormat !== undefined && dataFormat !== 'NHWC') ||
      padTop < 0 ||
      padLeft < 0 ||
      bottom < 0 ||
      right < 0
    ) {
      return fallback(args);
    }
    return composed(backend, (s) => {
      const swapped = s.run('Transpose', { x: filter }, { perm: [0, 1, 3, 2] }); // [KH, KW, Co, Ci]
      const flipped = s.run('Reverse', { x: swapped }, { dims: [0, 1] });
      const explicit = [
        [0, 0],
        [padTop, bottom],
        [padLeft, right],
        [0, 0],
      ];
      return s.final(
        'Conv2D',
        { x: dy, filter: flipped },
        { strides: [1, 1], pad: explicit, dataFormat: 'NHWC', dilations: [1, 1] },
      );
    });
  };
}
