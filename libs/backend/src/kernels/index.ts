import { getKernel, registerKernel, unregisterKernel, type KernelConfig, type KernelFunc } from '@tensorflow/tfjs-core';
import { conv2DBackpropFilter } from './conv2d-backprop-filter.ts';
import { conv2DBackpropFilterReference } from './conv2d-backprop-filter-reference.ts';
import { conv2DBackpropInput } from './conv2d-backprop-input.ts';
import { batchMatMul } from './batch-matmul.ts';
import { maxPoolGrad } from './max-pool-grad.ts';
import { sum } from './sum.ts';
import { identity } from './identity.ts';
import { compileDirectDw } from './direct-conv2d-backprop-filter.ts';

/**
 * Which training kernels the wasm backend uses:
 * - `reference`: plain tfjs wasm plus the first composed Conv2DBackpropFilter (the speed baseline);
 * - `project`: the fast Conv2DBackpropFilter and the fast paths that replace tfjs's slow wasm kernels.
 */
export type WasmKernelSet = 'reference' | 'project';

/** Kernels tfjs's wasm backend lacks entirely (tensorflow/tfjs#8474), per set. */
const MISSING: Record<string, Record<WasmKernelSet, KernelFunc>> = {
  Conv2DBackpropFilter: { reference: conv2DBackpropFilterReference, project: conv2DBackpropFilter },
};

/** Replacements for slow tfjs wasm kernels; each gets the original for the cases it does not cover. */
const FAST_PATHS: Record<string, (original: KernelFunc) => KernelFunc> = {
  Conv2DBackpropInput: conv2DBackpropInput,
  BatchMatMul: batchMatMul,
  MaxPoolGrad: () => maxPoolGrad,
  Sum: sum,
  Identity: identity,
};

export const WASM_TRAINING_KERNELS: readonly string[] = [...Object.keys(MISSING), ...Object.keys(FAST_PATHS)];

/** tfjs's own wasm kernel configs, captured before the first replacement. */
const originals = new Map<string, KernelConfig>();

function install(config: KernelConfig): void {
  if (getKernel(config.kernelName, 'wasm')) unregisterKernel(config.kernelName, 'wasm');
  registerKernel(config);
}

/**
 * Registers a set of wasm training kernels (idempotent; switching sets between calls is allowed, the
 * benchmark does it to measure both in one process). Returns the kernel names the project provides.
 * Async because the project set's own WebAssembly kernel is assembled first (once per process).
 */
export async function registerWasmTrainingKernels(set: WasmKernelSet = 'project'): Promise<string[]> {
  if (set === 'project') await compileDirectDw();
  for (const [name, funcs] of Object.entries(MISSING)) {
    const existing = getKernel(name, 'wasm');
    if (existing && !Object.values(funcs).includes(existing.kernelFunc))
      throw new Error(`tfjs now has its own wasm ${name}; the project's composed kernel should be retired.`);
    install({ kernelName: name, backendName: 'wasm', kernelFunc: funcs[set] });
  }
  for (const [name, make] of Object.entries(FAST_PATHS)) {
    if (!originals.has(name)) {
      const original = getKernel(name, 'wasm');
      if (!original)
        throw new Error(`the wasm backend has no ${name} kernel; is @tensorflow/tfjs-backend-wasm loaded?`);
      originals.set(name, original);
    }
    const original = originals.get(name)!;
    install(set === 'project' ? { ...original, kernelFunc: make(original.kernelFunc) } : original);
  }
  return set === 'project' ? [...WASM_TRAINING_KERNELS] : Object.keys(MISSING);
}
