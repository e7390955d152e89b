import { preprocessBatch, INPUT_SIZE, type ImageSet } from '@dann/data';
import type { DannNetwork } from './network.ts';

export interface Evaluation {
  readonly count: number;
  readonly accuracy: number;
  /** Mean cross-entropy of the true class. */
  readonly loss: number;
  /** Accuracy of each true class 0..9 (NaN where a class is absent). */
  readonly perClass: number[];
  /** confusion[true][predicted] counts. */
  readonly confusion: number[][];
}

/** Accuracy, loss, per-class accuracy and confusion matrix of the label path on a labelled set. */
export async function evaluate(net: DannNetwork, set: ImageSet, batchSize = 256): Promise<Evaluation> {
  const confusion = Array.from({ length: 10 }, () => new Array<number>(10).fill(0));
  let loss = 0;
  const buffer = new Float32Array(batchSize * INPUT_SIZE);
  for (let start = 0; start < set.count; start += batchSize) {
    const m = Math.min(batchSize, set.count - start);
    const indices = Uint32Array.from({ length: m }, (_, i) => start + i);
    const probs = await net.predict(preprocessBatch(set, indices, buffer.subarray(0, m * INPUT_SIZE)), batchSize);
    for (let i = 0; i < m; i++) {
      const row = probs.subarray(i * 10, i * 10 + 10);
      let best = 0;
      for (let k = 1; k < 10; k++) if (row[k] > row[best]) best = k;
      const truth = set.labels[start + i];
      confusion[truth][best]++;
      loss -= Math.log(Math.max(row[truth], 1e-12));
    }
  }
  const correct = confusion.reduce((a, row, k) => a + row[k], 0);
  const perClass = confusion.map((row, k) => {
    const n = row.reduce((a, b) => a + b, 0);
    return n ? row[k] / n : NaN;
  });
  return { count: set.count, accuracy: correct / set.count, loss: loss / set.count, perClass, confusion };
}
