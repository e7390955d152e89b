import type { RunResult } from './report.ts';

export interface GroupSummary {
  readonly pair: string;
  /** Run kind: the run directory's name without its seed (e.g. synth-mnist-dann). */
  readonly kind: string;
  readonly seeds: number;
  readonly target: { mean: number; std: number; values: number[] };
  readonly source: { mean: number; std: number };
}

function meanStd(xs: readonly number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std };
}

/** Groups runs named KIND-SEED and summarises target/source accuracy over seeds (sample std). */
export function summarizeRuns(results: readonly RunResult[]): GroupSummary[] {
  const groups = new Map<string, RunResult[]>();
  for (const r of results) {
    const kind = r.run.replace(/-\d+$/, '');
    groups.set(kind, [...(groups.get(kind) ?? []), r]);
  }
  return [...groups].map(([kind, rs]) => ({
    pair: rs[0].pair,
    kind,
    seeds: rs.length,
    target: { ...meanStd(rs.map((r) => r.target.accuracy)), values: rs.map((r) => r.target.accuracy) },
    source: meanStd(rs.map((r) => r.source.accuracy)),
  }));
}

export function summaryMarkdown(groups: readonly GroupSummary[]): string {
  const f = (x: number) => x.toFixed(4);
  return [
    '| pair | runs | seeds | source acc (mean ± std) | target acc (mean ± std) | target acc per seed |',
    '| --- | --- | --- | --- | --- | --- |',
    ...groups.map(
      (g) =>
        `| ${g.pair} | ${g.kind} | ${g.seeds} | ${f(g.source.mean)} ± ${f(g.source.std)} | ${f(g.target.mean)} ± ${f(g.target.std)} | ${g.target.values.map(f).join(', ')} |`,
    ),
  ].join('\n');
}
