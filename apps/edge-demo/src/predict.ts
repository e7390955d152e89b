/** What the Node CLI and the page both do with the model's output and its model.json. Pure: no DOM, no Node. */
import type { ModelInfo } from '@dann/onnx';

export interface Ranked {
  readonly digit: number;
  readonly probability: number;
  /** The three most probable digits, most probable first. */
  readonly top3: { digit: number; probability: number }[];
}

/** Ranks one row of 10 probabilities. */
export function rank(probabilities: ArrayLike<number>): Ranked {
  if (probabilities.length !== 10) throw new Error(`expected 10 class probabilities, got ${probabilities.length}.`);
  const order = Array.from({ length: 10 }, (_, k) => k).sort((a, b) => probabilities[b] - probabilities[a]);
  const top3 = order.slice(0, 3).map((digit) => ({ digit, probability: probabilities[digit] }));
  return { digit: order[0], probability: probabilities[order[0]], top3 };
}

export const describeModel = (m: ModelInfo) =>
  m.training
    ? `${m.training.network}, ${m.training.method} ${m.training.source} -> ${m.training.target}${m.accuracy ? ` (test accuracy ${m.accuracy.source.toFixed(3)} / ${m.accuracy.target.toFixed(3)})` : ''}${m.quantization === 'int8' ? ', int8 weights' : ''}`
    : 'model';

/**
 * onnxruntime session options for both the CLI and the page: one thread, full graph optimisation, and an int8
 * model's DequantizeLinear of constant weights folded once at load instead of on every call.
 */
export const SESSION_OPTIONS = {
  intraOpNumThreads: 1,
  graphOptimizationLevel: 'all',
  extra: { session: { disable_quant_qdq: '1' } },
} as const;
