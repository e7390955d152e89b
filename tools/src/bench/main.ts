import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { METHODS, PRESET_NAMES, type Method, type PresetName } from '@dann/training';
import { parseCommand, positiveInt, runMain } from '@dann/cli';
import { benchTraining, trainReport } from './train.ts';
import { benchInference, inferenceReport } from './inference.ts';
import { replaceSection } from './stats.ts';
import { benchWire, wireReport } from './wire.ts';
import { benchScaling, scalingReport } from './scaling.ts';
import { benchEdge, edgeReport } from './edge.ts';

const command = {
  name: 'bench',
  summary:
    "Benchmarks: training throughput with the project's wasm kernels against the reference, inference (tfjs vs onnxruntime), the edge demo (model size, int8 accuracy, page latency), gradient frame codec, distributed scaling. `all` rewrites BENCHMARKS.md.",
  usage: 'npx nx run tools:bench -- all | train inference edge wire scaling [--write] [options]',
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
const BENCHMARKS = ['train', 'inference', 'edge', 'wire', 'scaling'] as const;
type Benchmark = (typeof BENCHMARKS)[number];
const TITLES: Record<Benchmark, string> = {
  train: 'Training throughput: project kernels vs reference (wasm)',
  inference: 'Inference (label path): tfjs wasm vs onnxruntime-node',
  edge: 'Edge demo: ONNX model size, int8 accuracy, page latency in Chromium',
  wire: 'Gradient frames: encode and decode',
  scaling: 'Distributed scaling on this machine',
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
    else body = scalingReport(64, await benchScaling([1, 2], 64, 12));
    console.log(`\n${body}\n`);
    bodies.set(b, body);
  }
  if (positionals.includes('all') || v.write) {
    const doc = existsSync(v.out) ? readFileSync(v.out, 'utf8') : '# Benchmarks\n';
    writeFileSync(v.out, updateGenerated(doc, bodies));
    console.log(`updated the generated part of ${v.out}: ${[...bodies.keys()].join(', ')}`);
  }
});

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
