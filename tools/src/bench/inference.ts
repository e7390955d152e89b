import { DannNetwork, PRESETS, type PresetName } from '@dann/training';
import { selectBackend } from '@dann/backend';
import { buildOnnxModel, openOnnx } from '@dann/onnx';
import { INPUT_SIZE, createRng } from '@dann/data';
import { formatSummary, markdownTable, summarize, type Summary } from './stats.ts';

const ENGINES = ['tfjs wasm', 'onnxruntime-node fp32', 'onnxruntime-node int8'] as const;
type Engine = (typeof ENGINES)[number];

export interface InferenceResult {
  readonly preset: PresetName;
  readonly batch: number;
  readonly engine: Engine;
  /** Images per second. */
  readonly rate: Summary;
  /** Milliseconds per call. */
  readonly latency: Summary;
}

async function time(runs: number, batch: number, call: () => unknown): Promise<{ latency: Summary; rate: Summary }> {
  await call(); // warm-up
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await call();
    ms.push(performance.now() - t0);
  }
  return { latency: summarize(ms), rate: summarize(ms.map((t) => (batch * 1000) / t)) };
}

/**
 * Label-path predict at the given batch sizes, the same weights and images in tfjs `wasm` and in
 * onnxruntime-node (the exported model, fp32 and int8; one intra-op thread, like tfjs wasm here),
 * interleaved per configuration: `runs` timed calls after one warm-up.
 */
export async function benchInference(
  presets: readonly PresetName[],
  batches: readonly number[],
  runs: number,
): Promise<InferenceResult[]> {
  await selectBackend({ backend: 'wasm' });
  const rng = createRng(3);
  const results: InferenceResult[] = [];
  for (const preset of presets) {
    const arch = PRESETS[preset];
    const weights = DannNetwork.initialWeights(arch, 1);
    const net = new DannNetwork(arch, weights);
    const fp32 = await openOnnx(buildOnnxModel(arch, weights), arch.input);
    const int8 = await openOnnx(buildOnnxModel(arch, weights, { quantization: 'int8' }), arch.input);
    for (const batch of batches) {
      const images = Float32Array.from({ length: batch * INPUT_SIZE }, () => rng.normal());
      const calls: Record<Engine, () => unknown> = {
        'tfjs wasm': () => net.predict(images, batch),
        'onnxruntime-node fp32': () => fp32.probabilities(images, batch),
        'onnxruntime-node int8': () => int8.probabilities(images, batch),
      };
      for (const engine of ENGINES)
        results.push({ preset, batch, engine, ...(await time(runs, batch, calls[engine])) });
    }
    await Promise.all([fp32.close(), int8.close()]);
    net.dispose();
  }
  return results;
}

export function inferenceReport(results: readonly InferenceResult[]): string {
  const base = (r: InferenceResult) =>
    results.find((x) => x.preset === r.preset && x.batch === r.batch && x.engine === 'tfjs wasm')!;
  return (
    markdownTable(
      ['preset', 'batch', 'engine', 'images/s', 'ms per call', 'vs tfjs wasm'],
      results.map((r) => [
        r.preset,
        String(r.batch),
        r.engine,
        formatSummary(r.rate, 0),
        formatSummary(r.latency, 2),
        `${(r.rate.median / base(r).rate.median).toFixed(2)}x`,
      ]),
    ) +
    '\n\nSame weights and inputs in each row group; onnxruntime-node runs the exported ONNX model with one intra-op thread (tfjs wasm has one thread in Node).'
  );
}
