import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

interface RefCounting {
  incRef(dataId: object): void;
}

/**
 * Identity without a copy: the output shares the input's memory and takes a reference, as the cpu
 * backend does (tfjs tensors are immutable; variables change by swapping their data, not writing it).
 * tfjs's engine clones every tensor it saves for the backward pass, and tfjs's wasm Identity copies
 * each one in JavaScript: ~20 ms per `seed` step at batch 64.
 */
export function identity(original: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === 'string') return original(args);
    (args.backend as unknown as RefCounting).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}
