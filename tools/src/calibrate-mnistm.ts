import { loadDataset } from '@dann/data';
import { evaluate } from '@dann/training';
import { selectBackend } from '@dann/backend';
import { parseCommand, positiveInt, runMain } from '@dann/cli';
import { loadRun } from './runs.ts';

const command = {
  name: 'calibrate-mnistm',
  summary:
    'Evaluates an MNIST-trained source-only run on MNIST-M-style test sets of several texture brightness ceilings, to pick the one at which the domain gap matches the paper (source-only ~0.52).',
  usage: 'npx nx run tools:calibrate-mnistm -- runs/NAME [--brightness 0.4,0.6,0.8,1] [--contrast 0.6] [--limit 2000]',
  options: {
    brightness: {
      type: 'string',
      description: 'comma-separated brightness ceilings in (0, 1]',
      default: '0.3,0.4,0.5,0.6,0.7,0.8,1',
    },
    contrast: { type: 'string', description: "texture contrast in [0, 1] (default: the generator's)" },
    limit: { type: 'string', description: 'test images per contrast', default: '2000' },
    'data-dir': { type: 'string', description: 'data folder (default: $DANN_DATA_DIR or <workspace>/data)' },
  },
} as const;

runMain(async () => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const { values: v, positionals } = args;
  if (positionals.length !== 1) throw new Error('name one run directory trained on mnist, e.g. runs/NAME.');
  const levels = v.brightness.split(',').map(Number);
  if (levels.some((b) => !(b > 0 && b <= 1)))
    throw new Error(`--brightness must be numbers in (0, 1], got "${v.brightness}".`);
  const contrast = v.contrast === undefined ? undefined : Number(v.contrast);
  if (contrast !== undefined && !(contrast >= 0 && contrast <= 1))
    throw new Error(`--contrast must be a number in [0, 1], got "${v.contrast}".`);
  const limit = positiveInt('limit', v.limit);
  await selectBackend({ backend: 'auto' });
  const { config, net } = loadRun(positionals[0]);
  if (config.run.data.source !== 'mnist')
    throw new Error(
      `${positionals[0]} was trained on ${config.run.data.source}; calibration needs a run trained on mnist.`,
    );
  console.log(
    `mnist test accuracy: ${(await evaluate(net, loadDataset('mnist', 'test', { limit }))).accuracy.toFixed(4)}`,
  );
  console.log('| brightness | MNIST-M-style test accuracy |\n| --- | --- |');
  for (const b of levels) {
    const set = loadDataset('mnistm', 'test', {
      limit,
      mnistmBrightness: b,
      mnistmContrast: contrast,
      dataDir: v['data-dir'],
    });
    console.log(`| ${b} | ${(await evaluate(net, set)).accuracy.toFixed(4)} |`);
  }
  net.dispose();
});
