import { backend_util, getKernel, type KernelConfig, type KernelFunc, type TensorInfo, type Conv2DBackpropFilterAttrs } from '@tensorflow/tfjs-core';

/** The wasm backend's own kernel functions this kernel is built from (all XNNPACK-backed or cheap). */
interface WasmBackendLike {
  disposeData(dataId: object): boolean;
}

function kernel(name: string): KernelFunc {
  const k = getKernel(name, 'wasm');
  if (!k) throw new Error(`the wasm backend has no ${name} kernel; is @tensorflow/tfjs-backend-wasm loaded?`);
  return k.kernelFunc;
}

/**
 * dW for a 2-D convolution on the wasm backend, which lacks this kernel (tensorflow/tfjs#8474).
 *
 * dW[kh, kw, ci, co] = sum over n, oh, ow of xPadded[n, oh*s + kh, ow*s + kw, ci] * dy[n, oh, ow, co],
 * which is a forward convolution with the roles swapped: input x^T = [Ci, H, W, N] (batch as channels),
 * filter dy^T = [OH, OW, N, Co] dilated by the forward stride, the forward padding on top/left and
 * whatever bottom/right padding (or crop) makes the output exactly KH x KW; then [Ci, KH, KW, Co] -> HWIO.
 */
const conv2DBackpropFilterWasm: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
  if (dataFormat !== undefined && dataFormat !== 'NHWC') throw new Error(`Conv2DBackpropFilter on wasm supports NHWC only, got ${dataFormat}.`);
  const b = backend as unknown as WasmBackendLike;
  const info = backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape as [number, number, number, number], strides, 1, pad, dimRoundingMode);
  const [, H, W] = x.shape;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw, outHeight: OH, outWidth: OW } = info;
  const { top, left } = info.padInfo;
  // Rows/columns of the (padded) input that the forward pass read: (O-1)*s + K, starting at -top/-left.
  const bottom = (OH - 1) * sh + KH - top - H;
  const right = (OW - 1) * sw + KW - left - W;
  const disposables: TensorInfo[] = [];
  const run = (name: string, ins: Record<string, TensorInfo>, at: Record<string, unknown>): TensorInfo => {
    const out = kernel(name)({ inputs: ins, backend, attrs: at as never }) as TensorInfo;
    disposables.push(out);
    return out;
  };
  try {
    let xT = run('Transpose', { x }, { perm: [3, 1, 2, 0] }); // [Ci, H, W, N]
    if (bottom < 0 || right < 0) {
      // The forward pass never read the last rows/columns: crop them instead of padding negatively.
      xT = run('Slice', { x: xT }, { begin: [0, 0, 0, 0], size: [xT.shape[0], H + Math.min(bottom, 0), W + Math.min(right, 0), xT.shape[3]] });
    }
    const dyT = run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] }); // [OH, OW, N, Co]
    const explicit = [[0, 0], [top, Math.max(bottom, 0)], [left, Math.max(right, 0)], [0, 0]];
    const dwT = run('Conv2D', { x: xT, filter: dyT }, { strides: [1, 1], pad: explicit, dataFormat: 'NHWC', dilations: [sh, sw], dimRoundingMode: undefined }); // [Ci, KH, KW, Co]
    const dw = kernel('Transpose')({ inputs: { x: dwT }, backend, attrs: { perm: [1, 2, 0, 3] } as never }) as TensorInfo;
    return dw;
  } finally {
    for (const t of disposables) b.disposeData(t.dataId);
  }
};

export const conv2DBackpropFilterWasmConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilterWasm,
};
