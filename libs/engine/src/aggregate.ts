/**
 * How the coordinator combines the shard gradients of one step, without sockets. Plain functions over
 * Float32Arrays, summed in shard order so every rule is deterministic.
 *
 * - `mean`: the sample-weighted mean (what one process with the whole batch computes).
 * - `clipped-mean` (default): a gradient whose L2 norm exceeds `clipFactor` x the step's median norm
 *   (the lower median, so with two shards the smaller norm decides) is scaled down to the median norm,
 *   then the sample-weighted mean. Honest shards of one batch have similar norms and are left alone
 *   (the result equals `mean`); a peer that scales its gradient by -1e6 weighs no more than one honest
 *   shard, so with two honest shards beside it the average still points downhill.
 * - `trimmed-mean`, `median`: after the same bound, coordinate-wise: the mean of the values left when
 *   the largest and smallest fifth (at least one each) are removed, or the median. They need three or
 *   more shards; with fewer they act as `clipped-mean`.
 */
export const AGGREGATES = ['mean', 'clipped-mean', 'trimmed-mean', 'median'] as const;
export type Aggregate = (typeof AGGREGATES)[number];

/** A gradient whose norm exceeds this multiple of the step's median norm is scaled to the median (`--clip-factor`). */
export const DEFAULT_CLIP_FACTOR = 3;
const TRIM_FRACTION = 0.2;

export interface Contribution {
  readonly samples: number;
  readonly gradient: Float32Array;
}

export interface Aggregated {
  readonly gradient: Float32Array;
  readonly samples: number;
  /** Contributions whose norm was bounded (their index in the input), with their norm and the norm they were scaled to. */
  readonly clipped: readonly { readonly index: number; readonly norm: number; readonly bound: number }[];
  /** The rule that was applied: trimmed-mean and median with fewer than three shards act as clipped-mean. */
  readonly rule: Aggregate;
}

export function l2norm(values: Float32Array): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i] * values[i];
  return Math.sqrt(s);
}

/** The lower median: the middle value, or the smaller of the two middle values. */
function lowerMedian(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[(sorted.length - 1) >> 1];
}

/** Combines one step's shard gradients (in shard order) by `rule`; throws on an empty list. */
export function aggregate(
  parts: readonly Contribution[],
  rule: Aggregate,
  clipFactor = DEFAULT_CLIP_FACTOR,
): Aggregated {
  if (parts.length === 0) throw new Error('nothing to aggregate.');
  const size = parts[0].gradient.length;
  const samples = parts.reduce((n, p) => n + p.samples, 0);
  const scales = parts.map(() => 1);
  const clipped: { index: number; norm: number; bound: number }[] = [];
  if (rule !== 'mean') {
    const norms = parts.map((p) => l2norm(p.gradient));
    const median = lowerMedian(norms);
    norms.forEach((norm, index) => {
      if (norm > clipFactor * median && median > 0) {
        scales[index] = median / norm;
        clipped.push({ index, norm, bound: median });
      }
    });
  }
  const applied: Aggregate = (rule === 'trimmed-mean' || rule === 'median') && parts.length < 3 ? 'clipped-mean' : rule;
  const out = new Float32Array(size);
  if (applied === 'mean' || applied === 'clipped-mean') {
    const acc = new Float64Array(size);
    parts.forEach((p, k) => {
      const w = (scales[k] * p.samples) / samples;
      for (let i = 0; i < size; i++) acc[i] += w * p.gradient[i];
    });
    out.set(acc);
  } else {
    const n = parts.length;
    const trim = applied === 'median' ? 0 : Math.max(1, Math.floor(TRIM_FRACTION * n));
    const column = new Float64Array(n);
    for (let i = 0; i < size; i++) {
      for (let k = 0; k < n; k++) column[k] = scales[k] * parts[k].gradient[i];
      column.sort();
      if (applied === 'median') {
        out[i] = n % 2 ? column[n >> 1] : (column[n / 2 - 1] + column[n / 2]) / 2;
      } else {
        let s = 0;
        for (let k = trim; k < n - trim; k++) s += column[k];
        out[i] = s / (n - 2 * trim);
      }
    }
  }
  return { gradient: out, samples, clipped, rule: applied };
}
