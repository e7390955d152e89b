import type { TensorInfo } from '@tensorflow/tfjs-core';

/** The part of tfjs's wasm backend the JavaScript kernels use: float32 views of tensors on the wasm heap. */
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array;
}

/**
 * Allocates a float32 output and returns it with views of the inputs and the output on the wasm heap.
 * The views are taken after the allocation (an allocation can grow the heap and detach older views)
 * and must not outlive the kernel call.
 */
export function heapViews(
  backend: unknown,
  inputs: readonly TensorInfo[],
  outShape: number[],
): { out: TensorInfo; views: Float32Array[]; outView: Float32Array } {
  const b = backend as unknown as WasmHeapBackend;
  for (const t of inputs) if (t.dtype !== 'float32') throw new Error(`expected float32 tensors, got ${t.dtype}.`);
  const out = b.makeOutput(outShape, 'float32');
  return { out, views: inputs.map((t) => b.typedArrayFromHeap(t)), outView: b.typedArrayFromHeap(out) };
}
