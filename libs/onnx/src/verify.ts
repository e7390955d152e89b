import type * as Ort from 'onnxruntime-node';
import type { DannNetwork } from '@dann/training';
import { ONNX_INPUT } from './export.ts';

/** The tolerance the export promises: onnxruntime's probabilities within this of tfjs's, and the same top-1. */
export const ONNX_TOLERANCE = 1e-4;

export interface OnnxRunner {
  /** Class probabilities (n x 10) for preprocessed NHWC images. */
  probabilities(images: Float32Array, batchSize?: number): Promise<Float32Array>;
  close(): Promise<void>;
}

/** An onnxruntime-node session (CPU, one intra-op thread unless told otherwise) over a model's bytes or file. */
export async function openOnnx(
  model: Uint8Array | string,
  shape: { height: number; width: number; channels: number },
  threads = 1,
): Promise<OnnxRunner> {
  // Its telemetry regex-matches /proc/self/cmdline and overflows the stack on long command lines (see
  // apps/edge-demo/src/classify.ts): off for every program of this project before the first session.
  process.env.ORT_DISABLE_TELEMETRY = '1';
  const ort = await import('onnxruntime-node'); // loaded on first use: trainers never need the native runtime
  let session: Ort.InferenceSession;
  try {
    // disable_quant_qdq lets onnxruntime fold an int8 model's DequantizeLinear of constant weights once at load,
    // instead of on every call (paper-svhn at batch 1: 54 -> 6 ms); fp32 models are unaffected.
    const opts: Ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      extra: { session: { disable_quant_qdq: '1' } },
    };
    session =
      typeof model === 'string'
        ? await ort.InferenceSession.create(model, opts)
        : await ort.InferenceSession.create(model, opts);
  } catch (e) {
    throw new Error(
      `onnxruntime could not load the model${typeof model === 'string' ? ` ${model}` : ''}: ${(e as Error).message.split('\n')[0]}`,
    );
  }
  const per = shape.height * shape.width * shape.channels;
  return {
    async probabilities(images, batchSize = 256) {
      const n = images.length / per;
      if (!Number.isInteger(n))
        throw new Error(
          `${images.length} floats do not make whole ${shape.height}x${shape.width}x${shape.channels} images.`,
        );
      const out = new Float32Array(n * 10);
      for (let start = 0; start < n; start += batchSize) {
        const m = Math.min(batchSize, n - start);
        const input = new ort.Tensor('float32', images.subarray(start * per, (start + m) * per), [
          m,
          shape.height,
          shape.width,
          shape.channels,
        ]);
        const result = await session.run({ [ONNX_INPUT]: input }, ['probabilities']);
        out.set(result.probabilities.data as Float32Array, start * 10);
        result.probabilities.dispose();
      }
      return out;
    },
    close: () => session.release(),
  };
}

export interface OnnxVerification {
  readonly count: number;
  /** max |p_onnx - p_tfjs| over all images and classes. */
  readonly maxAbsDiff: number;
  /** Images whose arg-max differs. */
  readonly top1Mismatches: number;
  readonly passed: boolean;
}

const argmax = (p: Float32Array, i: number) => {
  let best = 0;
  for (let k = 1; k < 10; k++) if (p[i * 10 + k] > p[i * 10 + best]) best = k;
  return best;
};

/** Compares two probability tables (n x 10): largest difference and top-1 disagreements. */
export function compareProbabilities(a: Float32Array, b: Float32Array, tolerance = ONNX_TOLERANCE): OnnxVerification {
  if (a.length !== b.length || a.length % 10 !== 0)
    throw new Error(`cannot compare ${a.length} with ${b.length} probabilities.`);
  const count = a.length / 10;
  let maxAbsDiff = 0,
    top1Mismatches = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    maxAbsDiff = Number.isNaN(d) ? Infinity : Math.max(maxAbsDiff, d);
  }
  for (let i = 0; i < count; i++) if (argmax(a, i) !== argmax(b, i)) top1Mismatches++;
  return { count, maxAbsDiff, top1Mismatches, passed: maxAbsDiff <= tolerance && top1Mismatches === 0 };
}

/** Runs the model in onnxruntime-node and the network in tfjs on the same images and compares; also returns both tables. */
export async function verifyOnnx(
  model: Uint8Array,
  net: DannNetwork,
  images: Float32Array,
  tolerance = ONNX_TOLERANCE,
): Promise<OnnxVerification & { onnx: Float32Array; tfjs: Float32Array }> {
  const runner = await openOnnx(model, net.arch.input);
  try {
    const onnx = await runner.probabilities(images);
    const tfjs = await net.predict(images);
    return { ...compareProbabilities(onnx, tfjs, tolerance), onnx, tfjs };
  } finally {
    await runner.close();
  }
}

/** Top-1 accuracy of an ONNX model (file or bytes) in onnxruntime-node on each labelled set. */
export async function scoreOnnx(
  model: Uint8Array | string,
  shape: { height: number; width: number; channels: number },
  sets: readonly { images: Float32Array; labels: ArrayLike<number> }[],
): Promise<number[]> {
  const runner = await openOnnx(model, shape);
  try {
    const scores: number[] = [];
    for (const set of sets) scores.push(accuracyOf(await runner.probabilities(set.images), set.labels));
    return scores;
  } finally {
    await runner.close();
  }
}

/** Top-1 accuracy of a probability table against labels. */
export function accuracyOf(probabilities: Float32Array, labels: ArrayLike<number>): number {
  let right = 0;
  for (let i = 0; i < labels.length; i++) if (argmax(probabilities, i) === labels[i]) right++;
  return labels.length ? right / labels.length : 0;
}
