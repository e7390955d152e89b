import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels, type WasmKernelSet } from './kernels/index.ts';
import { activateWebgpu, chooseAdapter, surveyAdapters } from './webgpu.ts';

export const BACKEND_CHOICES = ['auto', 'webgpu', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendRequest = (typeof BACKEND_CHOICES)[number];

export interface BackendOptions {
  readonly backend?: BackendRequest;
  /** GPU index: the N-th hardware WebGPU adapter; for tfjs-node-gpu, CUDA_VISIBLE_DEVICES. */
  readonly gpu?: number;
  /** Fail instead of falling back when the requested device cannot be used. */
  readonly strictDevice?: boolean;
  /** Training kernels on wasm: the project's fast paths (default) or the reference set (benchmarks). */
  readonly wasmKernels?: WasmKernelSet;
  readonly log?: (line: string) => void;
}

export interface BackendInfo {
  /** tfjs backend name now active: webgpu, tensorflow, wasm or cpu. */
  readonly backend: string;
  /** What runs, e.g. "GPU NVIDIA H200, vendor nvidia (WebGPU on vulkan, dawn.node)", "cpu (wasm XNNPACK, 1 thread, project training kernels)". */
  readonly device: string;
  /** One line per device that could not be used (or was replaced by a software GPU), saying why. */
  readonly fallbacks: string[];
}

type Candidate = 'webgpu' | 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
type Attempt = { device: string; note?: string } | { failure: string };
const NODE_PACKAGES: Record<'tensorflow-gpu' | 'tensorflow', string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
};

/** Why a package failed to load, in one line. */
export function loadFailure(pkg: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND') {
    if (String(e.message).includes(pkg)) return `${pkg} is not installed (see the README, "GPU machines")`;
  }
  const first = String(e.message ?? err).split('\n')[0];
  if (/libcud|cudnn|libnvidia|CUDA/i.test(first))
    return `${pkg} is installed but the CUDA libraries are missing (${first})`;
  return `${pkg} failed to load (${first})`;
}

/** The first line of an error, for a one-sentence report. */
function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0];
}

async function tryWebgpu(gpu: number, allowSoftware: boolean): Promise<Attempt> {
  let survey: Awaited<ReturnType<typeof surveyAdapters>>;
  try {
    survey = await surveyAdapters({ software: allowSoftware });
  } catch (err) {
    return { failure: `the webgpu package (dawn.node) failed to load (${firstLine(err)})` };
  }
  const pick = chooseAdapter(survey, gpu, allowSoftware);
  if ('failure' in pick) return pick;
  try {
    return { device: await activateWebgpu(pick.adapter), note: pick.note };
  } catch (err) {
    return { failure: `the ${pick.adapter.backend} adapter ${pick.adapter.name} did not start (${firstLine(err)})` };
  }
}

async function tryCandidate(c: Candidate, o: BackendOptions, allowSoftware: boolean): Promise<Attempt> {
  if (c === 'webgpu') return tryWebgpu(o.gpu ?? 0, allowSoftware);
  if (c === 'tensorflow-gpu' || c === 'tensorflow') {
    if (c === 'tensorflow-gpu' && o.gpu !== undefined) process.env.CUDA_VISIBLE_DEVICES = String(o.gpu);
    const pkg = NODE_PACKAGES[c];
    try {
      await import(/* @vite-ignore */ pkg);
    } catch (err) {
      return { failure: loadFailure(pkg, err) };
    }
    if (!(await tf.setBackend('tensorflow'))) return { failure: `${pkg} loaded but its backend did not initialise` };
    return { device: c === 'tensorflow-gpu' ? `GPU ${o.gpu ?? 0} (tfjs-node-gpu)` : 'cpu (tfjs-node, libtensorflow)' };
  }
  if (c === 'wasm') await registerWasmTrainingKernels(o.wasmKernels ?? 'project');
  if (!(await tf.setBackend(c))) return { failure: `the ${c} backend did not initialise` };
  return {
    device:
      c === 'wasm'
        ? 'cpu (wasm XNNPACK, 1 thread, project training kernels)'
        : 'cpu (plain JavaScript, slow for convolutions)',
  };
}

/** The candidates a request tries, in order: the device asked for, then the CPU backends. */
function candidates(request: BackendRequest, gpu: number | undefined): Candidate[] {
  const cpu: Candidate[] = ['tensorflow', 'wasm', 'cpu'];
  if (request === 'auto') return gpu !== undefined ? ['webgpu', ...cpu] : cpu;
  if (request === 'webgpu' || request === 'tensorflow-gpu') return [request, ...cpu];
  return [request];
}

/**
 * Picks and activates the compute backend. `auto` takes, in order: the `gpu`-th hardware GPU adapter
 * through WebGPU (only when a GPU was asked for), tfjs-node, wasm with the project's training kernels,
 * cpu. `webgpu` may also take a software GPU (Mesa's llvmpipe) when there is no hardware one;
 * `tensorflow-gpu` is tfjs-node-gpu, for machines that can install it. A device that cannot be used is
 * reported in one line with what runs instead, unless `strictDevice` makes it an error.
 */
export async function selectBackend(options: BackendOptions = {}): Promise<BackendInfo> {
  const request = options.backend ?? 'auto';
  const gpu = options.gpu;
  const log = options.log ?? (() => {});
  const order = candidates(request, gpu);
  const gpuAsked = (c: Candidate) => c === 'webgpu' || c === 'tensorflow-gpu';
  const strict = options.strictDevice || !(request === 'auto' || gpuAsked(request));
  // With --strict-device and a GPU index, a software GPU does not stand in for the hardware one.
  const allowSoftware = request === 'webgpu' && !(options.strictDevice && gpu !== undefined);
  const fallbacks: string[] = [];
  for (const [i, c] of order.entries()) {
    const attempt = await tryCandidate(c, options, allowSoftware);
    const name = gpuAsked(c) ? `GPU ${gpu ?? 0}` : c;
    if ('device' in attempt) {
      await tf.ready();
      if (attempt.note) fallbacks.push(`${name} unavailable: ${attempt.note}`);
      const info = { backend: tf.getBackend(), device: attempt.device, fallbacks };
      const using = `backend: ${info.backend} on ${info.device}`;
      log(fallbacks.length ? `${fallbacks.join('; ')}; ${using}` : using);
      return info;
    }
    const asked = gpuAsked(c) || request === c;
    if (asked && (strict || i === order.length - 1))
      throw new Error(`cannot use the ${c} backend: ${attempt.failure}.`);
    if (asked) fallbacks.push(`${name} unavailable: ${attempt.failure}`);
  }
  throw new Error('no tfjs backend could be initialised.');
}
