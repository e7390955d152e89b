import { getKernel, registerKernel, unregisterKernel, type KernelConfig, type KernelFunc } from '@tensorflow/tfjs-core';
import { conv2DBackpropFilter } from './conv2d-backprop-filter.ts';
import { conv2DBackpropInput } from './conv2d-backprop-input.ts';
import { batchMatMul } from './batch-matmul.ts';
import { maxPoolGrad } from './max-pool-grad.ts';
import { sum } from './sum.ts';
import { identity } from './identity.ts';

/**
 * Which training kernels the wasm backend uses:
 * - `reference`: plain tfjs wasm plus only the missing Conv2DBackpropFilter (the speed baseline);
 * - `project`: also the fast paths that replace tfjs's slow wasm gradient kernels.
 */
export type WasmKernelSet = 'reference' | 'project';

/** Kernels tfjs's wasm backend lacks entirely. */
const ADDED: Record<string, KernelFunc> = { Conv2DBackpropFilter: conv2DBackpropFilter };

/** Replacements for slow tfjs wasm kernels; each gets the original for the cases it does not cover. */
const FAST_PATHS: Record<string, (original: KernelFunc) => KernelFunc> = {
  Conv2DBackpropInput: conv2DBackpropInput,
  BatchMatMul: batchMatMul,
  MaxPoolGrad: () => maxPoolGrad,
  Sum: sum,
  Identity: identity,
};

export const WASM_TRAINING_KERNELS: readonly string[] = [...Object.keys(ADDED), ...Object.keys(FAST_PATHS)];

/** tfjs's own wasm kernel configs, captured before the first replacement. */
const originals = new Map<string, KernelConfig>();

function install(config: KernelConfig): void {
  if (getKernel(config.kernelName, 'wasm')) unregisterKernel(config.kernelName, 'wasm');
  registerKernel(config);
}

/**
 * Registers the project's wasm training kernels (idempotent; switching sets between calls is allowed,
 * the benchmark does it to measure both in one process). Returns the kernel names now provided by the project.
 */
export function registerWasmTrainingKernels(set: WasmKernelSet = 'project'): string[] {
  for (const [name, kernelFunc] of Object.entries(ADDED)) {
    const existing = getKernel(name, 'wasm');
    if (!existing) registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc });
    else if (existing.kernelFunc !== kernelFunc) throw new Error(`tfjs now has its own wasm ${name}; the project's composed kernel should be retired.`);
  }
  for (const [name, make] of Object.entries(FAST_PATHS)) {
    if (!originals.has(name)) {
      const original = getKernel(name, 'wasm');
      if (!original) throw new Error(`the wasm backend has no ${name} kernel; is @tensorflow/tfjs-backend-wasm loaded?`);
      originals.set(name, original);
    }
    const original = originals.get(name)!;
    install(set === 'project' ? { ...original, kernelFunc: make(original.kernelFunc) } : original);
  }
  return set === 'project' ? [...WASM_TRAINING_KERNELS] : Object.keys(ADDED);
}
