import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { DannNetwork, METHODS, PRESET_NAMES, PRESETS, type Method, type PresetName } from '@dann/training';
import { WIRE_DTYPES, type WireDtype } from '@dann/protocol';
import { parseCommand, positiveInt, runMain } from '@dann/cli';
import { benchTraining, trainReport } from './train.ts';
import { benchInference, inferenceReport } from './inference.ts';
import { formatSummary, replaceSection } from './stats.ts';
import { coordinatorLoadReport, measureCoordinator, type LoadResult } from './coordinator-load.ts';
import { benchWire, wireReport } from './wire.ts';
import { benchScaling, scalingReport } from './scaling.ts';
import { benchEdge, edgeReport } from './edge.ts';

const command = {
  name: 'bench',
  summary:
    "Benchmarks: training throughput with the project's wasm kernels against the reference, inference (tfjs vs onnxruntime), the edge demo (model size, int8 accuracy, page latency), gradient frame codec, distributed scaling. `all` rewrites BENCHMARKS.md.",
  usage: 'npx nx run tools:bench -- all | train inference edge wire scaling coordinator [--write] [options]',
  options: {
    presets: {
      type: 'string',
      description: `comma-separated presets (${PRESET_NAMES.join(', ')})`,
      default: PRESET_NAMES.join(','),
    },
    batches: { type: 'string', description: 'comma-separated batch sizes for training', default: '32,64,128' },
    methods: {
      type: 'string',
      description: `comma-separated training methods: ${METHODS.join(', ')}`,
      default: 'source-only,dann',
    },
    runs: { type: 'string', description: 'timed repetitions per configuration (medians with min–max)', default: '5' },
    'max-seconds': {
      type: 'string',
      description: 'time budget of one training configuration (at least 2 steps are timed)',
      default: '60',
    },
    run: {
      type: 'string',
      description: 'the trained run the edge benchmark exports and measures',
      default: 'runs/main',
    },
    digits: { type: 'string', description: 'digits classified in the page per model (edge)', default: '40' },
    webgpu: {
      type: 'boolean',
      description:
        'train: also measure on the first WebGPU adapter (a software one here: record it, judge speed on a GPU)',
    },
    trainers: {
      type: 'string',
      description: 'coordinator: comma-separated simulated trainer counts',
      default: '1,2,4,8,16,32,64',
    },
    wire: {
      type: 'string',
      description: 'coordinator: comma-separated wire dtypes (f32, bf16, f16)',
      default: 'f32,bf16',
    },
    unmask: {
      type: 'string',
      description:
        "coordinator: comma-separated ways the coordinator unmasks frames (native: bufferutil; js: ws's own loop)",
      default: 'native',
    },
    'compute-ms': { type: 'string', description: "coordinator: each simulated trainer's compute delay", default: '50' },
    write: { type: 'boolean', description: "also update these benchmarks' subsections in --out (all always does)" },
    out: { type: 'string', description: 'the Markdown file with the generated block', default: 'BENCHMARKS.md' },
  },
} as const;

function list<T extends string>(name: string, value: string, allowed: readonly T[]): T[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const i of items)
    if (!allowed.includes(i as T)) throw new Error(`--${name}: "${i}" is not one of ${allowed.join(', ')}.`);
  return items as T[];
}

function machine(): string {
  const tfjs = JSON.parse(readFileSync(join('node_modules', '@tensorflow', 'tfjs-core', 'package.json'), 'utf8'))
    .version as string;
  return `${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, tfjs ${tfjs} wasm (SIMD, 1 thread)`;
}

/** The benchmarks in the order their subsections appear in BENCHMARKS.md. */
const BENCHMARKS = ['train', 'inference', 'edge', 'wire', 'scaling', 'coordinator'] as const;
type Benchmark = (typeof BENCHMARKS)[number];
const TITLES: Record<Benchmark, string> = {
  train: 'Training throughput: project kernels vs reference (wasm)',
  inference: 'Inference (label path): tfjs wasm vs onnxruntime-node',
  edge: 'Edge demo: ONNX model size, int8 accuracy, page latency in Chromium',
  wire: 'Gradient frames: encode and decode',
  scaling: 'Distributed scaling on this machine',
  coordinator: 'The coordinator under load: simulated trainers, real gradient sizes',
};

runMain(async () => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const { values: v, positionals } = args;
  if (positionals.length === 0)
    throw new Error(`say which benchmarks to run: ${BENCHMARKS.join(', ')} or all (see --usage).`);
  const chosen = positionals.includes('all')
    ? [...BENCHMARKS]
    : list<Benchmark>('benchmark', positionals.join(','), BENCHMARKS);
  const presets = list<PresetName>('presets', v.presets, PRESET_NAMES);
  const runs = positiveInt('runs', v.runs);
  const bodies = new Map<Benchmark, string>();
  console.log(`machine: ${machine()}`);
  for (const b of BENCHMARKS.filter((x) => chosen.includes(x))) {
    let body: string;
    if (b === 'train') {
      body = trainReport(
        await benchTraining({
          presets,
          runs,
          batches: v.batches.split(',').map((x) => positiveInt('batches', x)),
          methods: list<Method>('methods', v.methods, METHODS),
          maxSeconds: positiveInt('max-seconds', v['max-seconds']),
          webgpu: Boolean(v.webgpu),
          log: (l) => console.log(l),
        }),
      );
    } else if (b === 'inference') body = inferenceReport(await benchInference(presets, [1, 256], Math.max(runs, 5)));
    else if (b === 'edge')
      body = edgeReport(await benchEdge(v.run, 10_000, positiveInt('digits', v.digits), (l) => console.log(l)));
    else if (b === 'wire') body = wireReport(1_541_612, benchWire(1_541_612, Math.max(runs, 5)));
    else if (b === 'scaling') body = scalingReport(64, await benchScaling([1, 2], 64, 12));
    else
      body = coordinatorLoadReport(
        await benchCoordinator(presets, v, runs),
        Object.fromEntries(presets.map((p) => [p, DannNetwork.initialWeights(PRESETS[p], 1).length])),
      );
    console.log(`\n${body}\n`);
    bodies.set(b, body);
  }
  if (positionals.includes('all') || v.write) {
    const doc = existsSync(v.out) ? readFileSync(v.out, 'utf8') : '# Benchmarks\n';
    writeFileSync(v.out, updateGenerated(doc, bodies));
    console.log(`updated the generated part of ${v.out}: ${[...bodies.keys()].join(', ')}`);
  }
});

/** Gradients held per step above this are skipped (the coordinator and the simulated trainers share 23 GiB here). */
const LOAD_LIMIT_BYTES = 1.1e9;

/** The coordinator benchmark: every preset x wire dtype x trainer count that fits LOAD_LIMIT_BYTES. */
async function benchCoordinator(
  presets: readonly PresetName[],
  v: { trainers: string; wire: string; unmask: string; 'compute-ms': string },
  runs: number,
): Promise<LoadResult[]> {
  const results: LoadResult[] = [];
  for (const preset of presets) {
    const params = DannNetwork.initialWeights(PRESETS[preset], 1).length;
    for (const wireDtype of list<WireDtype>('wire', v.wire, WIRE_DTYPES))
      for (const trainers of v.trainers.split(',').map((x) => positiveInt('trainers', x)))
        for (const unmask of list('unmask', v.unmask, ['native', 'js'] as const)) {
          if (trainers * params * 4 > LOAD_LIMIT_BYTES) {
            console.log(
              `skipped ${preset} x ${trainers} trainers: ${((trainers * params * 4) / 1e9).toFixed(1)} GB of gradients per step`,
            );
            continue;
          }
          const r = await measureCoordinator({
            preset,
            params,
            trainers,
            wireDtype,
            computeMs: positiveInt('compute-ms', v['compute-ms']),
            steps: runs,
            unmask,
          });
          console.log(
            `${preset} ${wireDtype} ${unmask} ${trainers}: overhead ${formatSummary(r.overheadMs, 1)} ms, CPU ${r.cpuMsPerStep.toFixed(0)} ms/step`,
          );
          results.push(r);
        }
  }
  return results;
}

/**
 * Rewrites the subsections of the generated block (between the `bench` markers) for the benchmarks
 * that ran, each stamped with the machine, date and command; the other subsections stay as they were.
 */
function updateGenerated(doc: string, bodies: ReadonlyMap<Benchmark, string>): string {
  const begin = '<!-- bench:begin -->',
    end = '<!-- bench:end -->';
  const i = doc.indexOf(begin),
    j = doc.indexOf(end);
  const old = i >= 0 && j > i ? doc.slice(i + begin.length, j) : '';
  const parts = new Map<string, string>();
  for (const chunk of old.split(/^### /m).slice(1)) parts.set(chunk.split('\n')[0].trim(), `### ${chunk.trim()}`);
  const stamp = `_Measured ${new Date().toISOString().slice(0, 10)} on ${machine()} by \`npx nx run tools:bench -- ${process.argv.slice(2).join(' ')}\`._`;
  for (const [b, body] of bodies) parts.set(TITLES[b], `### ${TITLES[b]}\n\n${stamp}\n\n${body}`);
  const ordered = [
    ...BENCHMARKS.map((b) => parts.get(TITLES[b])).filter(Boolean),
    ...[...parts].filter(([t]) => !Object.values(TITLES).includes(t)).map(([, p]) => p),
  ];
  return replaceSection(doc, 'bench', ordered.join('\n\n'));
}
