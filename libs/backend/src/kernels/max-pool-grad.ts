import { backend_util, type KernelFunc, type TensorInfo, type MaxPoolGradAttrs } from '@tensorflow/tfjs-core';
import { heapViews } from './heap.ts';

/**
 * MaxPoolGrad (NHWC) in JavaScript over the wasm heap: per window, the gradient goes to the first
 * maximum in row-major window order (tfjs's rule, so ties match the cpu backend), with the channel
 * dimension innermost so every read is contiguous. Non-overlapping unpadded 2x2 windows (every pool in
 * the presets) take a straight-line path. Several times faster than tfjs's wasm kernel here.
 */
export const maxPoolGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as MaxPoolGradAttrs;
  const info = backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const {
    out,
    views: [x, g],
    outView: dx,
  } = heapViews(backend, [input, dy], input.shape);
  dx.fill(0);
  const { filterHeight, filterWidth, strideHeight, strideWidth, padInfo } = info;
  const pool2x2 =
    filterHeight === 2 &&
    filterWidth === 2 &&
    strideHeight === 2 &&
    strideWidth === 2 &&
    padInfo.top === 0 &&
    padInfo.left === 0;
  (pool2x2 ? pool2x2Grad : poolGrad)(info, x, g, dx);
  return out;
};

function poolGrad(info: backend_util.Conv2DInfo, x: Float32Array, g: Float32Array, dx: Float32Array): void {
  const {
    batchSize: N,
    inHeight: H,
    inWidth: W,
    inChannels: C,
    outHeight: OH,
    outWidth: OW,
    filterHeight: FH,
    filterWidth: FW,
    strideHeight: SH,
    strideWidth: SW,
  } = info;
  const { top, left } = info.padInfo;
  const best = new Float32Array(C);
  const where = new Int32Array(C);
  for (let b = 0; b < N; b++) {
    for (let yR = 0; yR < OH; yR++) {
      const r0 = Math.max(0, yR * SH - top),
        r1 = Math.min(H, yR * SH - top + FH);
      for (let yC = 0; yC < OW; yC++) {
        const c0 = Math.max(0, yC * SW - left),
          c1 = Math.min(W, yC * SW - left + FW);
        best.fill(-Infinity);
        where.fill(-1);
        for (let r = r0; r < r1; r++) {
          for (let c = c0; c < c1; c++) {
            const base = ((b * H + r) * W + c) * C;
            for (let d = 0; d < C; d++) {
              const v = x[base + d];
              if (v > best[d]) {
                best[d] = v;
                where[d] = base + d;
              }
            }
          }
        }
        const gBase = ((b * OH + yR) * OW + yC) * C;
        for (let d = 0; d < C; d++) if (where[d] >= 0) dx[where[d]] += g[gBase + d];
      }
    }
  }
}

/** 2x2 windows with stride 2 and no padding: each input element belongs to at most one window. */
function pool2x2Grad(info: backend_util.Conv2DInfo, x: Float32Array, g: Float32Array, dx: Float32Array): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const rowStride = W * C;
  for (let b = 0; b < N; b++) {
    for (let yR = 0; yR < OH; yR++) {
      for (let yC = 0; yC < OW; yC++) {
        const p0 = ((b * H + 2 * yR) * W + 2 * yC) * C,
          p1 = p0 + C,
          p2 = p0 + rowStride,
          p3 = p2 + C;
        const gBase = ((b * OH + yR) * OW + yC) * C;
        for (let d = 0; d < C; d++) {
          let at = p0 + d,
            m = x[at];
          if (x[p1 + d] > m) {
            at = p1 + d;
            m = x[at];
          }
          if (x[p2 + d] > m) {
            at = p2 + d;
            m = x[at];
          }
          if (x[p3 + d] > m) {
            at = p3 + d;
            m = x[at];
          }
          // tfjs gives no gradient when no element beats -Infinity (all -Infinity or NaN).
          if (m > -Infinity) dx[at] = g[gBase + d];
        }
      }
    }
  }
}
