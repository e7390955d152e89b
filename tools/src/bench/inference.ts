import { DannNetwork, PRESETS, selectBackend, type PresetName } from '@dann/models';
import { INPUT_SIZE, createRng } from '@dann/data';
import { formatSummary, markdownTable, summarize, type Summary } from './stats.ts';

export interface InferenceResult {
  readonly preset: PresetName;
  readonly batch: number;
  /** Images per second. */
  readonly rate: Summary;
  /** Milliseconds per call. */
  readonly latency: Summary;
}

/** tfjs `wasm` predict (label path, softmax) at the given batch sizes: `runs` timed calls after one warm-up. */
export async function benchInference(presets: readonly PresetName[], batches: readonly number[], runs: number): Promise<InferenceResult[]> {
  await selectBackend({ backend: 'wasm' });
  const rng = createRng(3);
  const results: InferenceResult[] = [];
  for (const preset of presets) {
    const net = new DannNetwork(PRESETS[preset], DannNetwork.initialWeights(PRESETS[preset], 1));
    for (const batch of batches) {
      const images = Float32Array.from({ length: batch * INPUT_SIZE }, () => rng.normal());
      net.predict(images, batch);
      const ms: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        net.predict(images, batch);
        ms.push(performance.now() - t0);
      }
      results.push({ preset, batch, latency: summarize(ms), rate: summarize(ms.map((t) => (batch * 1000) / t)) });
    }
    net.dispose();
  }
  return results;
}

export function inferenceReport(results: readonly InferenceResult[]): string {
  return markdownTable(
    ['preset', 'batch', 'tfjs wasm images/s', 'ms per call'],
    results.map((r) => [r.preset, String(r.batch), formatSummary(r.rate, 0), formatSummary(r.latency, 2)]),
  );
}
