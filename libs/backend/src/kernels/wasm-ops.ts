import { getKernel, type KernelFunc, type TensorInfo, type KernelBackend } from '@tensorflow/tfjs-core';

/** A wasm backend kernel function by name (XNNPACK-backed or cheap ones only are used). */
export function wasmKernel(name: string): KernelFunc {
  const k = getKernel(name, 'wasm');
  if (!k) throw new Error(`the wasm backend has no ${name} kernel; is @tensorflow/tfjs-backend-wasm loaded?`);
  return k.kernelFunc;
}

/**
 * Runs wasm kernels for one composed kernel and frees every intermediate at the end: `run` results
 * are temporary, `final` is the one output the composed kernel returns.
 */
export class KernelScope {
  private readonly temps: TensorInfo[] = [];
  private readonly backend: KernelBackend;
  /** `backend` as kernel functions receive it (typed `{}` by tfjs). */
  constructor(backend: unknown) {
    this.backend = backend as KernelBackend;
  }

  run(fn: KernelFunc | string, inputs: Record<string, TensorInfo>, attrs: Record<string, unknown> = {}): TensorInfo {
    const out = this.final(fn, inputs, attrs);
    this.temps.push(out);
    return out;
  }

  final(fn: KernelFunc | string, inputs: Record<string, TensorInfo>, attrs: Record<string, unknown> = {}): TensorInfo {
    const f = typeof fn === 'string' ? wasmKernel(fn) : fn;
    return f({ inputs, backend: this.backend, attrs: attrs as never }) as TensorInfo;
  }

  /** Frees the temporaries; call in `finally`. */
  dispose(): void {
    for (const t of this.temps) this.backend.disposeData(t.dataId);
    this.temps.length = 0;
  }
}

/** Runs `body` with a scope whose temporaries are freed afterwards, even when it throws. */
export function composed(backend: unknown, body: (s: KernelScope) => TensorInfo): TensorInfo {
  const scope = new KernelScope(backend);
  try {
    return body(scope);
  } finally {
    scope.dispose();
  }
}
