import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Method, PresetName } from '@dann/training';
import type { TrainDevice, TrainMeasurement } from './train-worker.ts';
import { formatSummary, markdownTable, summarize } from './stats.ts';

export interface TrainBenchOptions {
  readonly presets: readonly PresetName[];
  readonly batches: readonly number[];
  readonly methods: readonly Method[];
  readonly runs: number;
  /** Budget of one configuration's timed steps (at least 2 steps are timed). */
  readonly maxSeconds: number;
  /** Also measure each configuration on the first WebGPU adapter. */
  readonly webgpu: boolean;
  readonly log: (line: string) => void;
}

export interface TrainComparison {
  readonly reference: TrainMeasurement;
  readonly project: TrainMeasurement;
  readonly webgpu?: TrainMeasurement;
}

const WORKER = fileURLToPath(new URL('./train-worker.ts', import.meta.url));

/** Runs one measurement in a fresh process (its own wasm heap and peak RSS). */
function measure(
  preset: string,
  batch: number,
  method: Method,
  device: TrainDevice,
  o: TrainBenchOptions,
): Promise<TrainMeasurement> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', WORKER, preset, String(batch), method, device, String(o.runs), String(o.maxSeconds)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '',
      err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as TrainMeasurement);
      else
        reject(
          new Error(
            `the ${device} measurement of ${preset} batch ${batch} ${method} failed (exit ${code}): ${err.trim().split('\n').pop() ?? ''}`,
          ),
        );
    });
  });
}

/** Reference and project kernels (and webgpu) on every configuration, side by side, alternating which goes first. */
export async function benchTraining(o: TrainBenchOptions): Promise<TrainComparison[]> {
  const results: TrainComparison[] = [];
  let flip = false;
  for (const preset of o.presets) {
    for (const batch of o.batches) {
      for (const method of o.methods) {
        const order: TrainDevice[] = flip ? ['project', 'reference'] : ['reference', 'project'];
        if (o.webgpu) order.push('webgpu');
        flip = !flip;
        const got: Partial<Record<TrainDevice, TrainMeasurement>> = {};
        for (const d of order) got[d] = await measure(preset, batch, method, d, o);
        const c = { reference: got.reference!, project: got.project!, webgpu: got.webgpu };
        results.push(c);
        o.log(trainRow(c).join('  '));
      }
    }
  }
  return results;
}

const TRAIN_HEADER = [
  'preset',
  'batch',
  'method',
  'reference samples/s',
  'project samples/s',
  'ratio',
  'peak RSS MB (ref / project)',
];
const WEBGPU_HEADER = ['webgpu samples/s', 'webgpu / project'];

export function trainHeader(webgpu: boolean): string[] {
  return webgpu ? [...TRAIN_HEADER, ...WEBGPU_HEADER] : TRAIN_HEADER;
}

/** One table row: medians with min–max, and the ratio of the medians. */
export function trainRow(c: TrainComparison): string[] {
  const ref = summarize(c.reference.samplesPerSec),
    pro = summarize(c.project.samplesPerSec);
  const row = [
    c.project.preset,
    String(c.project.batch),
    c.project.method,
    `${formatSummary(ref)} [${ref.runs}]`,
    `${formatSummary(pro)} [${pro.runs}]`,
    `${(pro.median / ref.median).toFixed(2)}x`,
    `${Math.round(c.reference.peakRssMB)} / ${Math.round(c.project.peakRssMB)}`,
  ];
  if (!c.webgpu) return row;
  const gpu = summarize(c.webgpu.samplesPerSec);
  return [...row, `${formatSummary(gpu)} [${gpu.runs}]`, `${(gpu.median / pro.median).toFixed(2)}x`];
}

/** Per-kernel milliseconds in one profiled step, reference beside project, largest first. */
export function kernelSplit(c: TrainComparison, top = 8): string {
  const names = new Set([...Object.keys(c.reference.kernelMs), ...Object.keys(c.project.kernelMs)]);
  const rows = [...names]
    .map((n) => ({ n, r: c.reference.kernelMs[n] ?? 0, p: c.project.kernelMs[n] ?? 0 }))
    .sort((a, b) => Math.max(b.r, b.p) - Math.max(a.r, a.p))
    .slice(0, top)
    .map(({ n, r, p }) => [n, r.toFixed(0), p.toFixed(0)]);
  const total = (m: Record<string, number>) => Object.values(m).reduce((a, b) => a + b, 0);
  rows.push(['all kernels', total(c.reference.kernelMs).toFixed(0), total(c.project.kernelMs).toFixed(0)]);
  const s = c.project.split;
  rows.push([
    'outside kernels: batch preparation / update (project)',
    '',
    `${s.prepare.toFixed(1)} / ${s.apply.toFixed(1)}`,
  ]);
  return markdownTable(
    [`${c.project.preset} batch ${c.project.batch} ${c.project.method}: kernel`, 'reference ms', 'project ms'],
    rows,
  );
}

export function trainReport(results: readonly TrainComparison[]): string {
  const gpu = results.find((c) => c.webgpu)?.webgpu;
  const table = markdownTable(trainHeader(Boolean(gpu)), results.map(trainRow));
  const splits = results.filter((c) => c.project.batch === 64).map((c) => kernelSplit(c));
  const leaks = results.filter((c) => !c.project.numTensorsStable || !c.reference.numTensorsStable);
  return [
    'Samples/s: source samples per second of whole training steps (gradient + update; DANN steps also carry as many',
    'target images), median (min–max) [timed steps]. Reference: plain tfjs `wasm` plus the first composed',
    "`Conv2DBackpropFilter`; project: the project's kernels. Each cell is its own process.",
    ...(gpu ? [`webgpu: tfjs-backend-webgpu on ${gpu.deviceName}.`] : []),
    '',
    table,
    '',
    ...splits.flatMap((t) => [t, '']),
    leaks.length
      ? `Tensor count grew across steps in: ${leaks.map((c) => `${c.project.preset}/${c.project.batch}/${c.project.method}`).join(', ')}.`
      : 'Tensor count stayed constant across the timed steps in every configuration.',
  ].join('\n');
}
