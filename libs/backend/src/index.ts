export {
  selectBackend,
  BACKEND_CHOICES,
  type BackendRequest,
  type BackendInfo,
  type BackendOptions,
} from './backend.ts';
export { registerWasmTrainingKernels, WASM_TRAINING_KERNELS, type WasmKernelSet } from './kernels/index.ts';
