export {
  PRESETS,
  PRESET_NAMES,
  greyInput,
  withDomainHead,
  domainAfter,
  conditionalDomain,
  paramSpecs,
  paramCount,
  layerOutput,
  type Architecture,
  type Layer,
  type ParamSpec,
  type PresetName,
  type Group,
} from './architecture.ts';
export { DannNetwork, greyImages, type ForwardOptions } from './network.ts';
export { gradientReversal, stopGradient } from './grl.ts';
export { lambdaSchedule, lrSchedule, progress } from './schedules.ts';
export {
  computeGradient,
  METHODS,
  ADVERSARIAL,
  type Adversarial,
  type Method,
  type StepBatch,
  type StepOptions,
  type StepResult,
} from './step.ts';
export {
  applyUpdate,
  createOptimizerState,
  l2norm,
  OPTIMIZERS,
  type OptimizerConfig,
  type OptimizerKind,
  type OptimizerState,
  type UpdateInfo,
} from './optimizer.ts';
export { saveCheckpoint, loadCheckpoint, encodeCheckpoint, decodeCheckpoint, type Checkpoint } from './checkpoint.ts';
export { evaluate, type Evaluation } from './evaluate.ts';
export {
  selectBackend,
  BACKEND_CHOICES,
  type BackendRequest,
  type BackendInfo,
  type BackendOptions,
} from './backend.ts';
export { registerWasmTrainingKernels, WASM_TRAINING_KERNELS, type WasmKernelSet } from './kernels/index.ts';
export { Trainer, RunPlan, architectureOf, TRAINING_DEFAULTS, type TrainConfig, type StepReport } from './trainer.ts';
export {
  buildOnnxModel,
  describeOnnxModel,
  labelPathSha256,
  quantizePerChannel,
  ONNX_INPUT,
  ONNX_OUTPUTS,
  ONNX_OPSET,
  type OnnxBuildOptions,
  type Quantization,
} from './onnx/export.ts';
export {
  openOnnx,
  verifyOnnx,
  scoreOnnx,
  compareProbabilities,
  accuracyOf,
  ONNX_TOLERANCE,
  type OnnxRunner,
  type OnnxVerification,
} from './onnx/verify.ts';
export {
  exportOnnx,
  verificationImages,
  sidecarPath,
  MIN_VERIFY_IMAGES,
  type OnnxExportRequest,
  type OnnxExportResult,
  type OnnxSidecar,
} from './onnx/write.ts';
