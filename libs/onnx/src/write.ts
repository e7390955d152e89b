import { statSync } from 'node:fs';
import {
  DIGIT_PREPARATION,
  loadDataset,
  PREPROCESSING,
  preprocessBatch,
  writeFileAtomic,
  type DatasetName,
} from '@dann/data';
import type { Architecture } from '@dann/training';
import { DannNetwork } from '@dann/training';
import { buildOnnxModel, labelPathSha256, ONNX_INPUT, ONNX_OPSET, ONNX_OUTPUTS, type Quantization } from './export.ts';
import { accuracyOf, ONNX_TOLERANCE, verifyOnnx, type OnnxVerification } from './verify.ts';
import type { OnnxSidecar } from './model-info.ts';

export interface OnnxExportRequest {
  readonly arch: Architecture;
  readonly weights: Float32Array;
  readonly training: OnnxSidecar['training'];
  readonly accuracy?: OnnxSidecar['accuracy'];
  /** Real preprocessed test images (at least 256) and their labels, to verify against tfjs and score int8. */
  readonly verify: { readonly images: Float32Array; readonly labels: ArrayLike<number> };
  /** e.g. runs/NAME/model.onnx; the sidecar goes next to it as .json. */
  readonly file: string;
  readonly quantization?: Quantization;
  /** Tests only: see OnnxBuildOptions.flattenOrder. */
  readonly flattenOrder?: 'reorder' | 'none';
}

export interface OnnxExportResult {
  readonly file: string;
  readonly sidecarFile: string;
  readonly bytes: number;
  readonly sidecar: OnnxSidecar;
  /** Top-1 accuracy of this ONNX model and of tfjs on the verification images (int8 differs from fp32 here). */
  readonly onnxAccuracy: number;
  readonly tfjsAccuracy: number;
}

export const MIN_VERIFY_IMAGES = 256;

export const sidecarPath = (onnxFile: string) => onnxFile.replace(/\.onnx$/, '') + '.json';

/**
 * Builds the ONNX model, verifies it in onnxruntime-node against tfjs, and only then writes the model and its
 * model.json sidecar (each atomically). fp32 must match within ONNX_TOLERANCE with the same top-1 or nothing
 * is written; int8 is reported (its difference is the point) but must keep top-1 accuracy within 2 points.
 */
export async function exportOnnx(req: OnnxExportRequest): Promise<OnnxExportResult> {
  const { arch, weights, verify } = req;
  const quantization = req.quantization ?? 'none';
  const per = arch.input.height * arch.input.width * arch.input.channels;
  const count = verify.images.length / per;
  if (count < MIN_VERIFY_IMAGES)
    throw new Error(`the export is verified on at least ${MIN_VERIFY_IMAGES} real test images; got ${count}.`);
  if (verify.labels.length !== count)
    throw new Error(`${count} verification images but ${verify.labels.length} labels.`);
  const base = {
    format: 'dann-onnx/1' as const,
    labels: Array.from({ length: 10 }, (_, k) => String(k)),
    input: {
      name: ONNX_INPUT,
      layout: 'NHWC' as const,
      shape: ['batch' as const, arch.input.height, arch.input.width, arch.input.channels],
      dtype: 'float32' as const,
    },
    outputs: ONNX_OUTPUTS,
    preprocessing: { ...PREPROCESSING, digit: DIGIT_PREPARATION },
    training: req.training,
    accuracy: req.accuracy ?? null,
    weightsSha256: labelPathSha256(arch, weights),
    quantization,
    opset: ONNX_OPSET,
  };
  const metadata = Object.fromEntries(
    Object.entries(base).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
  );
  const model = buildOnnxModel(arch, weights, { quantization, metadata, flattenOrder: req.flattenOrder });

  const net = new DannNetwork(arch, weights);
  let verification: OnnxVerification, onnxAccuracy: number, tfjsAccuracy: number;
  try {
    const { onnx, tfjs, ...compared } = await verifyOnnx(model, net, verify.images);
    verification = compared;
    onnxAccuracy = accuracyOf(onnx, verify.labels);
    tfjsAccuracy = accuracyOf(tfjs, verify.labels);
  } finally {
    net.dispose();
  }
  const summary = `max |Δprob| ${verification.maxAbsDiff.toExponential(2)} over ${count} images, top-1 differs on ${verification.top1Mismatches}`;
  if (quantization === 'none' && !verification.passed) {
    throw new Error(
      `the ONNX model does not match tfjs (${summary}; allowed ${ONNX_TOLERANCE} and none): nothing written.`,
    );
  }
  if (quantization === 'int8' && tfjsAccuracy - onnxAccuracy > 0.02) {
    throw new Error(
      `int8 weights cost ${((tfjsAccuracy - onnxAccuracy) * 100).toFixed(1)} accuracy points (${summary}): nothing written.`,
    );
  }
  const sidecar: OnnxSidecar = {
    ...base,
    verification: { ...verification, tolerance: ONNX_TOLERANCE, accuracy: { onnx: onnxAccuracy, tfjs: tfjsAccuracy } },
  };
  writeFileAtomic(req.file, model);
  writeFileAtomic(sidecarPath(req.file), new TextEncoder().encode(JSON.stringify(sidecar, null, 2) + '\n'));
  return {
    file: req.file,
    sidecarFile: sidecarPath(req.file),
    bytes: statSync(req.file).size,
    sidecar,
    onnxAccuracy,
    tfjsAccuracy,
  };
}

/** Real test images of both domains, preprocessed, with labels: what an export is verified on. */
export function verificationImages(
  domains: readonly DatasetName[],
  perDomain: number,
  dataDir?: string,
): { images: Float32Array; labels: Uint8Array } {
  const parts = domains.map((name) => {
    const set = loadDataset(name, 'test', { limit: perDomain, dataDir });
    return {
      images: preprocessBatch(
        set,
        Array.from({ length: set.count }, (_, i) => i),
      ),
      labels: set.labels,
    };
  });
  const images = new Float32Array(parts.reduce((a, p) => a + p.images.length, 0));
  const labels = new Uint8Array(parts.reduce((a, p) => a + p.labels.length, 0));
  let i = 0,
    j = 0;
  for (const p of parts) {
    images.set(p.images, i);
    labels.set(p.labels, j);
    i += p.images.length;
    j += p.labels.length;
  }
  return { images, labels };
}
