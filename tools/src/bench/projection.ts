/**
 * Step time past one machine, projected from measured constants: today's star (every trainer sends its gradient
 * to the coordinator and gets the average back), a reduction tree (relays average their subtree and forward one
 * gradient), and a ring all-reduce. Weak scaling: each trainer's shard, and so its compute time, stays the same.
 */
import { markdownTable } from './stats.ts';

export const TOPOLOGIES = ['star', 'tree', 'ring'] as const;
export type Topology = (typeof TOPOLOGIES)[number];

export interface Link {
  /** Bandwidth of every machine's link, each direction. */
  readonly gbits: number;
  /** One-way latency between two machines. */
  readonly latencyMs: number;
}

/** Costs fitted to `tools:bench -- coordinator`: the coordinator's CPU per step = updateMsPerParam x parameters + cpuMsPerByte x bytes moved. */
export interface CoordinatorCosts {
  /** CPU per byte of gradient received or update sent (decode, sum, encode, socket). */
  readonly cpuMsPerByte: number;
  /** A replica's update (Adam in JavaScript) per parameter; every trainer applies it before its next step. */
  readonly updateMsPerParam: number;
}

export interface StepModel {
  readonly params: number;
  readonly gradientBytes: number;
  /** One trainer's compute per step. */
  readonly computeMs: number;
  readonly link: Link;
  readonly costs: CoordinatorCosts;
  /** Children per relay in the tree. */
  readonly fanout: number;
}

/** Milliseconds to move `bytes` over the link. */
const wire = (bytes: number, link: Link) => (bytes * 8) / (link.gbits * 1e6);

/** The projected step time with `n` trainers. */
export function stepMs(topology: Topology, n: number, m: StepModel): number {
  const g = m.gradientBytes;
  const k = m.costs.cpuMsPerByte;
  // The trainers' replica update; the coordinator's own runs meanwhile, after it sent the update frames.
  const updateMs = m.costs.updateMsPerParam * m.params;
  const hop = m.link.latencyMs;
  switch (topology) {
    case 'star':
      // n gradients in, then n updates out, over the coordinator's one link and through its one core.
      return m.computeMs + 2 * hop + 2 * wire(n * g, m.link) + 2 * n * g * k + updateMs;
    case 'tree': {
      // Each level: a relay takes `fanout` gradients and forwards one; on the way back it sends `fanout` updates.
      const levels = Math.max(1, Math.ceil(Math.log(n) / Math.log(m.fanout) - 1e-9));
      const f = Math.min(n, m.fanout);
      return m.computeMs + levels * (2 * hop + wire((2 * f + 1) * g, m.link) + 2 * f * g * k) + updateMs;
    }
    case 'ring':
      // Reduce-scatter then all-gather: 2(n-1) hops, each moving a 1/n chunk; every trainer updates its replica.
      return m.computeMs + 2 * (n - 1) * (hop + wire(g / n, m.link) + (g / n) * k) + updateMs;
  }
}

/** Scaling efficiency: the one-trainer compute over the step, with `n` trainers (1 = perfect weak scaling). */
export function efficiency(topology: Topology, n: number, m: StepModel): number {
  return m.computeMs / stepMs(topology, n, m);
}

/**
 * Where adding trainers stops paying: the largest power of two up to `max` at which efficiency is still at
 * least one half (past it, a trainer adds less than half a trainer's samples per second); 1 if none.
 */
export function halfEfficiencyCount(topology: Topology, m: StepModel, max = 1024): number {
  let last = 1;
  for (let n = 2; n <= max; n *= 2) if (efficiency(topology, n, m) >= 0.5) last = n;
  return last;
}

/** Least squares of y = a u + b v (no intercept). */
export function fitTwo(points: readonly { u: number; v: number; y: number }[]): { a: number; b: number } {
  const s = (f: (p: { u: number; v: number; y: number }) => number) => points.reduce((t, p) => t + f(p), 0);
  const uu = s((p) => p.u * p.u),
    uv = s((p) => p.u * p.v),
    vv = s((p) => p.v * p.v),
    uy = s((p) => p.u * p.y),
    vy = s((p) => p.v * p.y);
  const det = uu * vv - uv * uv;
  if (Math.abs(det) < 1e-12 * uu * vv)
    throw new Error(
      'the measurements do not separate the two costs: measure more than one network size or trainer count.',
    );
  return { a: (uy * vv - vy * uv) / det, b: (vy * uu - uy * uv) / det };
}

export const PROJECTED_COUNTS = [2, 4, 16, 64, 256, 1024];
export const PROJECTED_LINKS: readonly Link[] = [
  { gbits: 10, latencyMs: 0.05 },
  { gbits: 25, latencyMs: 0.05 },
  { gbits: 100, latencyMs: 0.05 },
];

/** Efficiency per topology x link for each trainer count, and where adding trainers stops paying. */
export function projectionTable(name: string, base: Omit<StepModel, 'link'>): string {
  const rows: string[][] = [];
  for (const link of PROJECTED_LINKS)
    for (const t of TOPOLOGIES) {
      const m = { ...base, link };
      rows.push([
        `${t}${t === 'tree' ? ` (fanout ${base.fanout})` : ''}`,
        `${link.gbits} Gbit/s`,
        ...PROJECTED_COUNTS.map((n) => `${Math.round(stepMs(t, n, m))} ms, ${(100 * efficiency(t, n, m)).toFixed(0)}%`),
        String(halfEfficiencyCount(t, m)),
      ]);
    }
  return [
    `**${name}**: gradient ${(base.gradientBytes / 1e6).toFixed(1)} MB, compute ${base.computeMs} ms per trainer step. Cells: step time, efficiency (compute / step).`,
    '',
    markdownTable(
      ['topology', 'link', ...PROJECTED_COUNTS.map((n) => `${n} trainers`), 'efficiency ≥ 50% up to'],
      rows,
    ),
  ].join('\n');
}
