import { BACKEND_CHOICES, type BackendRequest } from '@dann/backend';
import { nxInvocationOption, oneOf, type OptionSpec } from '@dann/cli';

/** Where a trainer computes: the options trainer:train and trainer:start share. */
export const DEVICE_OPTIONS = {
  backend: { type: 'string', description: BACKEND_CHOICES.join(' | '), default: 'auto' },
  gpu: {
    type: 'string',
    description:
      'GPU index: the N-th hardware GPU adapter (WebGPU); with --backend tensorflow-gpu, CUDA_VISIBLE_DEVICES',
  },
  'strict-device': { type: 'boolean', description: 'fail instead of falling back when the GPU cannot be used' },
  'data-dir': { type: 'string', description: 'data folder (default: $DANN_DATA_DIR or <workspace>/data)' },
} as const satisfies Record<string, OptionSpec>;

export interface DeviceRequest {
  readonly backend: BackendRequest;
  readonly gpu?: number;
  readonly strictDevice: boolean;
}

/** The device options, checked; `npx nx run trainer:start --gpu 1 -- ...`: Nx keeps --gpu before the `--` to itself. */
export function deviceRequest(v: { backend: string; gpu?: string; 'strict-device'?: boolean }): DeviceRequest {
  const gpu = v.gpu ?? nxInvocationOption('gpu');
  return {
    backend: oneOf('backend', v.backend, BACKEND_CHOICES),
    ...(gpu === undefined ? {} : { gpu: gpuIndex(gpu) }),
    strictDevice: Boolean(v['strict-device']),
  };
}

function gpuIndex(value: string): number {
  const n = Number(value);
  if (!(Number.isInteger(n) && n >= 0)) throw new Error(`--gpu must be a GPU index (0, 1, ...), got "${value}".`);
  return n;
}
