import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels, type WasmKernelSet } from './kernels/index.ts';

export const BACKEND_CHOICES = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendRequest = (typeof BACKEND_CHOICES)[number];

export interface BackendOptions {
  readonly backend?: BackendRequest;
  /** GPU index: sets CUDA_VISIBLE_DEVICES before tfjs-node-gpu loads. */
  readonly gpu?: number;
  /** Fail instead of falling back when the requested device cannot be used. */
  readonly strictDevice?: boolean;
  /** Training kernels on wasm: the project's fast paths (default) or the reference set (benchmarks). */
  readonly wasmKernels?: WasmKernelSet;
  readonly log?: (line: string) => void;
}

export interface BackendInfo {
  /** tfjs backend name now active: tensorflow, wasm or cpu. */
  readonly backend: string;
  /** What the user asked for, and what runs: e.g. "gpu 1 (tfjs-node-gpu)", "cpu (wasm, 1 thread, project training kernels)". */
  readonly device: string;
  /** One line per fallback taken, saying why. */
  readonly fallbacks: string[];
}

type Candidate = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

const NODE_PACKAGES: Record<'tensorflow-gpu' | 'tensorflow', string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
};

/** Why a package failed to load, in one line. */
function loadFailure(pkg: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND') {
    if (String(e.message).includes(pkg)) return `${pkg} is not installed (see the README, "GPU machines")`;
  }
  const first = String(e.message ?? err).split('\n')[0];
  if (/libcud|cudnn|libnvidia|CUDA/i.test(first))
    return `${pkg} is installed but the CUDA libraries are missing (${first})`;
  return `${pkg} failed to load (${first})`;
}

async function tryCandidate(c: Candidate, gpu: number | undefined, wasmKernels: WasmKernelSet): Promise<string | null> {
  if (c === 'tensorflow-gpu' || c === 'tensorflow') {
    if (c === 'tensorflow-gpu' && gpu !== undefined) process.env.CUDA_VISIBLE_DEVICES = String(gpu);
    const pkg = NODE_PACKAGES[c];
    try {
      await import(/* @vite-ignore */ pkg);
    } catch (err) {
      return loadFailure(pkg, err);
    }
    if (!(await tf.setBackend('tensorflow'))) return `${pkg} loaded but its backend did not initialise`;
    return null;
  }
  if (c === 'wasm') await registerWasmTrainingKernels(wasmKernels);
  if (!(await tf.setBackend(c))) return `the ${c} backend did not initialise`;
  return null;
}

function describe(c: Candidate, gpu: number | undefined): string {
  switch (c) {
    case 'tensorflow-gpu':
      return `gpu ${gpu ?? 0} (tfjs-node-gpu)`;
    case 'tensorflow':
      return 'cpu (tfjs-node, libtensorflow)';
    case 'wasm':
      return 'cpu (wasm XNNPACK, 1 thread, project training kernels)';
    case 'cpu':
      return 'cpu (plain JavaScript, slow for convolutions)';
  }
}

/**
 * Picks and activates the compute backend. `auto` takes, in order: tfjs-node-gpu (only when a GPU was
 * asked for), tfjs-node, wasm with the project's training kernels, cpu. A GPU that cannot be used is
 * reported in one line and the next candidate is tried, unless `strictDevice` makes it an error.
 */
export async function selectBackend(options: BackendOptions = {}): Promise<BackendInfo> {
  const request = options.backend ?? 'auto';
  const gpu = options.gpu;
  const log = options.log ?? (() => {});
  let order: Candidate[];
  if (request === 'auto')
    order = gpu !== undefined ? ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] : ['tensorflow', 'wasm', 'cpu'];
  else if (request === 'tensorflow-gpu') order = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];
  else order = [request];
  const strict = options.strictDevice || (request !== 'auto' && request !== 'tensorflow-gpu');
  const fallbacks: string[] = [];
  for (const [i, c] of order.entries()) {
    const failure = await tryCandidate(c, gpu, options.wasmKernels ?? 'project');
    if (failure === null) {
      await tf.ready();
      const info = { backend: tf.getBackend(), device: describe(c, gpu), fallbacks };
      log(`backend: ${info.backend} on ${info.device}`);
      return info;
    }
    const asked = c === 'tensorflow-gpu' || request === c;
    if (asked && (strict || i === order.length - 1)) throw new Error(`cannot use the ${c} backend: ${failure}.`);
    if (asked) {
      const line = `${c === 'tensorflow-gpu' ? `GPU ${gpu ?? 0}` : request} unavailable: ${failure}; falling back`;
      fallbacks.push(line);
      log(line);
    }
  }
  throw new Error('no tfjs backend could be initialised.');
}
