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
} from './export.ts';
export {
  openOnnx,
  verifyOnnx,
  scoreOnnx,
  compareProbabilities,
  accuracyOf,
  ONNX_TOLERANCE,
  type OnnxRunner,
  type OnnxVerification,
} from './verify.ts';
export {
  exportOnnx,
  verificationImages,
  sidecarPath,
  MIN_VERIFY_IMAGES,
  type OnnxExportRequest,
  type OnnxExportResult,
} from './write.ts';
export { checkModelInfo, type ModelInfo, type OnnxSidecar } from './model-info.ts';
