import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { METHODS, PRESET_NAMES, type Method, type PresetName } from '@dann/models';
import { parseCommand, positiveInt, runMain } from '@dann/protocol';
import { benchTraining, trainReport } from './train.ts';
import { benchInference, inferenceReport } from './inference.ts';
import { replaceSection } from './stats.ts';

const command = {
  name: 'bench',
  summary: 'Benchmarks: training throughput with the project\'s wasm kernels against the reference, and inference. `all` rewrites BENCHMARKS.md.',
  usage: 'npx nx run tools:bench -- train|inference|all [options]',
  options: {
    presets: { type: 'string', description: `comma-separated presets (${PRESET_NAMES.join(', ')})`, default: PRESET_NAMES.join(',') },
    batches: { type: 'string', description: 'comma-separated batch sizes for training', default: '32,64,128' },
    methods: { type: 'string', description: 'comma-separated training methods', default: METHODS.join(',') },
    runs: { type: 'string', description: 'timed repetitions per configuration (medians with min–max)', default: '5' },
    'max-seconds': { type: 'string', description: 'time budget of one training configuration (at least 2 steps are timed)', default: '60' },
    out: { type: 'string', description: 'the file `all` rewrites', default: 'BENCHMARKS.md' },
  },
} as const;

function list<T extends string>(name: string, value: string, allowed: readonly T[]): T[] {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const i of items) if (!allowed.includes(i as T)) throw new Error(`--${name}: "${i}" is not one of ${allowed.join(', ')}.`);
  return items as T[];
}

function machine(): string {
  const tfjs = JSON.parse(readFileSync(join('node_modules', '@tensorflow', 'tfjs-core', 'package.json'), 'utf8')).version as string;
  return `${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, tfjs ${tfjs} wasm (SIMD, 1 thread)`;
}

runMain(async () => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const { values: v, positionals } = args;
  const what = positionals[0];
  if (!['train', 'inference', 'all'].includes(what ?? '')) throw new Error('say which benchmark to run: train, inference or all (see --usage).');
  const presets = list<PresetName>('presets', v.presets, PRESET_NAMES);
  const runs = positiveInt('runs', v.runs);
  const sections: { name: string; title: string; body: string }[] = [];
  console.log(`machine: ${machine()}`);
  if (what === 'train' || what === 'all') {
    const results = await benchTraining({
      presets, runs, batches: v.batches.split(',').map((b) => positiveInt('batches', b)),
      methods: list<Method>('methods', v.methods, METHODS), maxSeconds: positiveInt('max-seconds', v['max-seconds']), log: (l) => console.log(l),
    });
    const body = trainReport(results);
    console.log(`\n${body}\n`);
    sections.push({ name: 'bench-train', title: 'Training throughput: project kernels vs reference (wasm)', body });
  }
  if (what === 'inference' || what === 'all') {
    const body = inferenceReport(await benchInference(presets, [1, 256], Math.max(runs, 5)));
    console.log(`\n${body}\n`);
    sections.push({ name: 'bench-inference', title: 'Inference (label path)', body });
  }
  if (what === 'all') {
    const doc = existsSync(v.out) ? readFileSync(v.out, 'utf8') : '# Benchmarks\n';
    const header = `Machine: ${machine()}. Date: ${new Date().toISOString().slice(0, 10)}. Command: \`npx nx run tools:bench -- all\`${process.argv.length > 3 ? ` (${process.argv.slice(3).join(' ')})` : ''}.`;
    const generated = [header, ...sections.map((s) => `### ${s.title}\n\n${s.body}`)].join('\n\n');
    writeFileSync(v.out, replaceSection(doc, 'bench', generated));
    console.log(`rewrote the generated part of ${v.out}`);
  }
});
