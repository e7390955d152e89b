export {
  selectBackend,
  BACKEND_CHOICES,
  type BackendRequest,
  type BackendInfo,
  type BackendOptions,
} from './backend.ts';
export { registerWasmTrainingKernels, WASM_TRAINING_KERNELS, type WasmKernelSet } from './kernels/index.ts';
export { chooseAdapter, parseAdapterList, surveyAdapters, webgpuTestSkip, type GpuAdapter } from './webgpu.ts';
