/**
 * The GPU ready check: the WebGPU adapters this machine has, the DANN network's gradient on webgpu against
 * tfjs's cpu backend, and training samples/s on webgpu beside one wasm trainer (the project's kernels).
 * Runs from the pack `tools:device-check` builds (a GPU machine with no network and no Node), or here.
 */
import { performance } from 'node:perf_hooks';
import { selectBackend, surveyAdapters } from '@dann/backend';
import { parseCommand, positiveInt, runMain } from '@dann/cli';
import { dannGradientErrors, PRESETS, PRESET_NAMES, type PresetName } from '@dann/training';
import { measureTraining } from '../bench/train-worker.ts';
import { formatSummary, markdownTable, summarize } from '../bench/stats.ts';

const command = {
  name: 'device-check',
  summary:
    'Checks a GPU for training: its WebGPU adapter, the DANN gradient against cpu (within 1e-4), and DANN training samples/s on webgpu beside one wasm trainer.',
  usage: 'sh run.sh [options]   (in the pack; here: npx tsx tools/src/device-check/check.ts [options])',
  options: {
    presets: { type: 'string', description: 'comma-separated networks', default: 'paper,seed' },
    batches: { type: 'string', description: 'comma-separated batch sizes', default: '64,256,1024' },
    runs: { type: 'string', description: 'timed steps per configuration', default: '3' },
    'max-seconds': {
      type: 'string',
      description: 'time budget of one configuration (at least 2 steps are timed)',
      default: '15',
    },
    software: { type: 'boolean', description: 'accept a software GPU (Mesa llvmpipe) when there is no hardware one' },
  },
} as const;

runMain(async () => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const v = args.values;
  const started = performance.now();
  const presets = v.presets.split(',').map((p) => {
    if (!(PRESET_NAMES as readonly string[]).includes(p)) throw new Error(`--presets: unknown network "${p}".`);
    return p as PresetName;
  });
  const batches = v.batches.split(',').map((b) => positiveInt('batches', b));
  const runs = positiveInt('runs', v.runs);
  const maxSeconds = positiveInt('max-seconds', v['max-seconds']);

  const survey = await surveyAdapters({ software: true });
  console.log(
    `WebGPU adapters (dawn.node): ${survey.adapters.map((a) => `${a.name} [${a.backend}${a.software ? ', software' : ''}]`).join('; ') || 'none'}`,
  );
  for (const p of survey.problems) console.log(`  ${p}`);
  // Without --software a missing hardware GPU is an error, not a silent run on llvmpipe.
  const gpu = await selectBackend({
    backend: 'webgpu',
    strictDevice: true,
    ...(v.software ? {} : { gpu: 0 }),
    log: (l) => console.log(l),
  });

  const errors = await dannGradientErrors(PRESETS.paper, 'webgpu', 8);
  const worst = errors.reduce((a, e) => (e.err > a.err ? e : a));
  const passed = worst.err <= 1e-4;
  console.log(
    `gradient check (paper network, DANN, batch 8, webgpu vs cpu): largest relative error ${worst.err.toExponential(2)} (${worst.name}): ${passed ? 'passed' : 'FAILED'} (limit 1e-4)`,
  );

  const rows: string[][] = [];
  for (const preset of presets)
    for (const batch of batches) {
      const [onGpu, onWasm] = [
        await measureTraining(preset, batch, 'dann', 'webgpu', runs, maxSeconds),
        await measureTraining(preset, batch, 'dann', 'project', runs, maxSeconds),
      ].map((m) => summarize(m.samplesPerSec));
      rows.push([
        preset,
        String(batch),
        `${formatSummary(onGpu)} [${onGpu.runs}]`,
        `${formatSummary(onWasm)} [${onWasm.runs}]`,
        `${(onGpu.median / onWasm.median).toFixed(2)}x`,
      ]);
      console.log(rows.at(-1)!.join('  '));
    }
  console.log(
    `\nDANN training, source samples/s (median (min–max) [timed steps]); webgpu on ${gpu.device}, wasm: one trainer, 1 thread\n`,
  );
  console.log(markdownTable(['network', 'batch', 'webgpu samples/s', 'wasm samples/s', 'webgpu / wasm'], rows));
  console.log(
    `\ndevice check ${passed ? 'passed' : 'FAILED'} in ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
  // The GPU device would keep Node alive.
  process.exit(passed ? 0 : 1);
});
