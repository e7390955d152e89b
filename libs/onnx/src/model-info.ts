/**
 * The model.json schema: what the ONNX export writes next to model.onnx, and the check every reader (the edge
 * demo's CLI and page) applies. Types and one pure function only: the browser page bundles this module.
 */
import type { DIGIT_PREPARATION, PREPROCESSING } from '@dann/data';
import type { Quantization } from './export.ts';
import type { OnnxVerification } from './verify.ts';

/** What model.json holds (and, as JSON strings per key, the model's metadata_props). */
export interface OnnxSidecar {
  readonly format: 'dann-onnx/1';
  readonly labels: string[];
  readonly input: { name: string; layout: 'NHWC'; shape: (number | 'batch')[]; dtype: 'float32' };
  readonly outputs: readonly string[];
  readonly preprocessing: typeof PREPROCESSING & { digit: typeof DIGIT_PREPARATION };
  readonly training: { source: string; target: string; method: string; network: string; step: number };
  /** Accuracy of the trained network on the first `testImages` test images per domain (10000: the full sets), when known. */
  readonly accuracy: { source: number; target: number; testImages: number } | null;
  readonly weightsSha256: string;
  readonly quantization: Quantization;
  readonly opset: number;
  /** onnxruntime-node against tfjs on real test images at export time. */
  readonly verification: OnnxVerification & { tolerance: number; accuracy: { onnx: number; tfjs: number } };
}

/** The parts of model.json that inference needs: what checkModelInfo guarantees of any model.json, older ones included. */
export type ModelInfo = Pick<OnnxSidecar, 'input'> &
  Partial<Pick<OnnxSidecar, 'training' | 'accuracy' | 'quantization'>>;

/** Checks a parsed model.json against what the digit preparation produces (NHWC 32x32x3); one sentence if not. */
export function checkModelInfo(info: unknown, where: string): ModelInfo {
  const m = info as Partial<ModelInfo> | null;
  const shape = m?.input?.shape;
  if (
    !m ||
    typeof m !== 'object' ||
    !m.input ||
    m.input.layout !== 'NHWC' ||
    !Array.isArray(shape) ||
    shape.join(',') !== 'batch,32,32,3'
  ) {
    throw new Error(
      `${where} does not describe a 32x32x3 NHWC digit model; export one with npx nx run tools:export-onnx -- runs/NAME.`,
    );
  }
  return m as ModelInfo;
}
