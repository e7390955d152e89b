import { backend_util, type KernelFunc, type TensorInfo, type Conv2DBackpropFilterAttrs } from '@tensorflow/tfjs-core';
import { composed } from './wasm-ops.ts';

/**
 * The first composed dW kernel (the speed issue's starting point, kept as the benchmark reference):
 * always the x-input formulation — input x^T = [Ci, H, W, N] by one 4-D transpose, filter
 * dy^T = [OH, OW, N, Co] dilated by the stride — see conv2d-backprop-filter.ts for the fast one.
 */
export const conv2DBackpropFilterReference: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
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
  const bottom = (OH - 1) * sh + KH - top - H;
  const right = (OW - 1) * sw + KW - left - W;
  return composed(backend, (s) => {
    let xT = s.run('Transpose', { x }, { perm: [3, 1, 2, 0] });
    if (bottom < 0 || right < 0) {
      xT = s.run(
        'Slice',
        { x: xT },
        { begin: [0, 0, 0, 0], size: [xT.shape[0], H + Math.min(bottom, 0), W + Math.min(right, 0), xT.shape[3]] },
      );
    }
    const dyT = s.run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
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
    );
    return s.final('Transpose', { x: dwT }, { perm: [1, 2, 0, 3] });
  });
};
