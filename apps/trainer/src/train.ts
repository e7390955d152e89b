import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { selectBackend } from '@dann/backend';
import { runLocal } from '@dann/engine';
import { RUN_OPTIONS, resolveRun, runFlags } from '@dann/training';
import { parseCommand, runMain } from '@dann/cli';
import { DEVICE_OPTIONS, deviceRequest } from './options.ts';
import { Progress } from './progress.ts';

const command = {
  name: 'train',
  summary:
    'Trains a digit classifier in one process (the distributed engine with one in-process trainer) and writes runs/NAME/.',
  usage: 'npx nx run trainer:train -- [--config configs/NAME.json] [--method dann --source synth ...] --out runs/NAME',
  options: {
    ...RUN_OPTIONS,
    ...DEVICE_OPTIONS,
    resume: { type: 'boolean', description: 'continue from OUT/checkpoint.bin' },
    out: { type: 'string', description: 'run directory', default: 'runs/dann' },
  },
} as const;

runMain(async () => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const v = args.values;
  const { settings, config: run } = resolveRun(runFlags(v, args.given));
  const device = deviceRequest(v);
  const log = (line: string) => console.log(line);
  mkdirSync(v.out, { recursive: true });
  const backend = await selectBackend({ ...device, log });
  const { method, preset, epochs, batchSize } = run.train;
  log(
    `${method} ${run.data.source} -> ${run.data.target}, ${preset}: ${epochs} epoch(s) of batches of ${batchSize}, writing ${v.out}`,
  );
  let progress: Progress | null = null;
  let window = { start: performance.now(), samples: 0 };
  const coordinator = await runLocal({
    run,
    settings,
    out: v.out,
    resume: Boolean(v.resume),
    backend,
    dataDir: v['data-dir'],
    log: (line) => {
      progress?.clear();
      log(line);
    },
    onStep: (m, c) => {
      progress ??= new Progress(c.totalSteps, c.plan.stepsPerEpoch);
      const now = performance.now();
      window.samples += m.samples;
      const samplesPerSec = (window.samples / (now - window.start)) * 1000;
      if (now - window.start > 5000) window = { start: now, samples: 0 };
      progress.update(
        c.step,
        [
          Number.isNaN(m.labelLoss) ? '' : `loss ${m.labelLoss.toFixed(3)} `,
          Number.isNaN(m.domainLoss) ? '' : `dom ${m.domainLoss.toFixed(3)} λ ${m.lambda.toFixed(2)} `,
          `${samplesPerSec.toFixed(0)} samples/s`,
        ].join(''),
      );
    },
  });
  log(
    `done: ${join(v.out, 'checkpoint.bin')} (last, step ${coordinator.step}), ${join(v.out, 'best.bin')} (lowest source-validation loss)`,
  );
});
