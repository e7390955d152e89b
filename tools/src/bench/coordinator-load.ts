/**
 * The coordinator under load: a real coordinator process and N simulated trainers in this process that speak
 * the real protocol with gradients of the real size, their compute replaced by a fixed delay. Measures the
 * coordinator's overhead per step (the last gradient sent -> the last update received), its CPU time and peak
 * RSS, and the bytes moved.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { decodeFrame, encodeFrame, PROTOCOL_VERSION, type WireDtype } from '@dann/protocol';
import type { PresetName } from '@dann/training';
import { formatSummary, markdownTable, summarize, type Summary } from './stats.ts';
import { fitTwo, projectionTable, type CoordinatorCosts } from './projection.ts';

export interface LoadOptions {
  readonly preset: PresetName;
  /** The network's parameter count (the gradient's length). */
  readonly params: number;
  readonly trainers: number;
  readonly wireDtype: WireDtype;
  /** Each simulated trainer answers its shard after this many ms (its "compute"). */
  readonly computeMs: number;
  /** Timed steps (two more run first, untimed). */
  readonly steps: number;
  /**
   * How the coordinator unmasks the trainers' frames (and masks nothing: server frames are unmasked): `native`
   * with the bufferutil addon, `js` with ws's plain JavaScript loop (WS_NO_BUFFER_UTIL), as without the addon.
   */
  readonly unmask: 'native' | 'js';
}

export interface LoadResult extends LoadOptions {
  /** Per timed step: the last gradient sent -> the last update received, ms. */
  readonly overheadMs: Summary;
  /** Per timed step: wall time from one update to the next, ms. */
  readonly stepMs: Summary;
  /** The coordinator's CPU time (user + system) per timed step, ms. */
  readonly cpuMsPerStep: number;
  readonly peakRssMiB: number;
  /** Gradient and update frames on the wire per step, all trainers together. */
  readonly bytesPerStep: number;
}

const TOKEN = 'coordinator-load-bench';
const SERVE = join(import.meta.dirname, '../../../apps/coordinator/src/serve.ts');

/** CPU ms (user + system) and peak RSS (MiB) of a process, from /proc. */
function usage(pid: number): { cpuMs: number; peakRssMiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  const hwm = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return { cpuMs: ticks * 10, peakRssMiB: Number(hwm ?? 0) / 1024 };
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}.`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One configuration: starts the coordinator, joins N simulated trainers, times `steps` steps, stops it. */
export async function measureCoordinator(o: LoadOptions): Promise<LoadResult> {
  const out = mkdtempSync(join(tmpdir(), 'dann-coordinator-load-'));
  const batch = Math.max(64, o.trainers);
  const total = o.steps + 2;
  const child = spawn(
    process.execPath,
    [
      ...['--import', 'tsx', SERVE, '--preset', o.preset, '--method', 'source-only'],
      ...['--batch-size', String(batch), '--limit', String(batch * (total + 2) + 16), '--val-count', '16'],
      ...['--epochs', '1', '--eval-limit', '10', '--min-trainers', String(o.trainers), '--port', '0'],
      ...['--wire-dtype', o.wireDtype, '--step-timeout', '600000'],
      ...['--out', out],
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, DANN_TOKEN: TOKEN, ...(o.unmask === 'js' ? { WS_NO_BUFFER_UTIL: '1' } : {}) },
    },
  );
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const sockets: WebSocket[] = [];
  try {
    const url = await until(
      'the coordinator to listen',
      () => {
        if (child.exitCode !== null) throw new Error(`the coordinator exited: ${stderr.trim().split('\n').pop()}`);
        const f = join(out, 'coordinator.json');
        return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as { url: string }).url : undefined;
      },
      120_000,
    );
    const gradient = Float32Array.from({ length: o.params }, (_, i) => Math.sin(i) * 1e-3);
    const sent = new Map<number, number>(); // step -> time the last gradient of it was sent
    const received = new Map<number, number>(); // step -> time the last update of it arrived
    const updates = new Map<number, number>(); // step -> updates received
    let bytes = 0;
    let failure: Error | null = null;
    for (let t = 0; t < o.trainers; t++) {
      const ws = new WebSocket(url, {
        headers: { authorization: `Bearer ${TOKEN}` },
        perMessageDeflate: false,
        maxPayload: 1 << 30,
      });
      sockets.push(ws);
      ws.on('error', (err) => (failure ??= new Error(`simulated trainer ${t}: ${err.message}`)));
      ws.on('open', () =>
        ws.send(
          encodeFrame({ type: 'hello', protocol: PROTOCOL_VERSION, name: `sim-${t}`, backend: 'none', device: 'none' }),
        ),
      );
      ws.on('message', (raw: Buffer) => {
        const frame = decodeFrame(raw, { maxPayload: 4 * o.params });
        const m = frame.message;
        if (m.type === 'assign')
          setTimeout(() => {
            const bytesOut = encodeFrame(
              {
                type: 'gradient',
                step: m.step,
                shard: m.shard,
                samples: m.source.length,
                labelLoss: 1,
                domainLoss: Number.NaN,
                labelAcc: 0.5,
                domainAcc: Number.NaN,
                computeMs: o.computeMs,
              },
              gradient,
              o.wireDtype,
            );
            ws.send(bytesOut);
            bytes += bytesOut.length;
            sent.set(m.step, performance.now());
          }, o.computeMs);
        else if (m.type === 'update') {
          bytes += raw.length;
          received.set(m.step, performance.now());
          updates.set(m.step, (updates.get(m.step) ?? 0) + 1);
        }
      });
      // One at a time, as separate machines would: a flood of unauthenticated sockets from one address is evicted.
      await new Promise((resolve) => ws.once('open', resolve));
    }
    const done = (step: number) => {
      if (failure) throw failure;
      return (updates.get(step) ?? 0) === o.trainers ? true : undefined;
    };
    await until('the untimed steps', () => done(1), 600_000);
    const before = usage(child.pid!);
    const bytesBefore = bytes;
    const last = total - 1;
    await until('the timed steps', () => done(last), 1_800_000);
    const after = usage(child.pid!);
    const timed = Array.from({ length: o.steps }, (_, i) => i + 2);
    return {
      ...o,
      overheadMs: summarize(timed.map((s) => received.get(s)! - sent.get(s)!)),
      stepMs: summarize(timed.map((s) => received.get(s)! - received.get(s - 1)!)),
      cpuMsPerStep: (after.cpuMs - before.cpuMs) / o.steps,
      peakRssMiB: after.peakRssMiB,
      bytesPerStep: (bytes - bytesBefore) / o.steps,
    };
  } finally {
    for (const ws of sockets) ws.terminate();
    child.kill('SIGKILL');
    await exited;
    rmSync(out, { recursive: true, force: true });
  }
}

/** The coordinator's CPU per step as updateMsPerParam x parameters + cpuMsPerByte x bytes moved, fitted over the measured configurations. */
export function fitCosts(results: readonly LoadResult[]): CoordinatorCosts {
  const native = results.filter((r) => r.unmask === 'native');
  const { a, b } = fitTwo(
    (native.length ? native : results).map((r) => ({ u: r.params, v: r.bytesPerStep, y: r.cpuMsPerStep })),
  );
  return { updateMsPerParam: a, cpuMsPerByte: b };
}

/** A GPU trainer's compute per step in the projection: an assumption until a GPU has been measured. */
const PROJECTED_COMPUTE_MS = 100;

export function coordinatorLoadReport(results: readonly LoadResult[], params: Record<string, number>): string {
  const costs = fitCosts(results);
  const projections = Object.entries(params).flatMap(([preset, n]) =>
    [4, 2].map((bytes) =>
      projectionTable(`${preset}, ${bytes === 4 ? 'f32' : 'bf16'}`, {
        params: n,
        gradientBytes: n * bytes,
        computeMs: PROJECTED_COMPUTE_MS,
        costs,
        fanout: 8,
      }),
    ),
  );
  const computeMs = results[0]?.computeMs ?? 0;
  return [
    `Simulated trainers (this process) against a real coordinator on loopback, each answering its shard ${computeMs} ms`,
    'after the assignment with a gradient of the real size. Overhead: the last gradient sent -> the last update',
    "received (the coordinator reading N gradients, averaging, its replica's update, N update frames); CPU and peak",
    'RSS of the coordinator process; bytes: gradient + update frames per step. Median (min–max) over the timed steps.',
    'On 2 cores the simulated trainers share the machine with the coordinator. Unmask: the coordinator reads the',
    "trainers' masked frames with the bufferutil addon (native) or ws's JavaScript loop (js, WS_NO_BUFFER_UTIL=1).",
    '',
    markdownTable(
      [
        'network',
        'parameters',
        'wire',
        'unmask',
        'trainers',
        'overhead ms',
        'step ms',
        'coordinator CPU ms/step',
        'peak RSS MiB',
        'MB/step',
      ],
      results.map((r) => [
        r.preset,
        r.params.toLocaleString('en-US'),
        r.wireDtype,
        r.unmask,
        String(r.trainers),
        formatSummary(r.overheadMs, 1),
        formatSummary(r.stepMs, 0),
        r.cpuMsPerStep.toFixed(0),
        r.peakRssMiB.toFixed(0),
        (r.bytesPerStep / 1e6).toFixed(1),
      ]),
    ),
    '',
    `Fitted over the native rows (least squares): coordinator CPU per step = ${(costs.updateMsPerParam * 1e6).toFixed(1)} ms per million parameters (the replica's update) + ${(costs.cpuMsPerByte * 1e6).toFixed(2)} ms per MB moved.`,
    '',
    '#### Projection past one machine',
    '',
    `From those constants (\`tools/src/bench/projection.ts\`): star (today), reduction tree and ring all-reduce, every machine on`,
    `one link of the given bandwidth with 0.05 ms latency, each trainer computing ${PROJECTED_COMPUTE_MS} ms per step (an assumption: no GPU`,
    'step has been measured yet), weak scaling (each trainer keeps its shard). Star: the coordinator takes N gradients and',
    'sends N updates over its one link and one core. Tree: relays of fanout 8 average their children and forward one',
    'gradient. Ring: 2(N - 1) hops of |g|/N each; every trainer updates its own replica.',
    '',
    ...projections.flatMap((p) => [p, '']),
  ].join('\n');
}
