import { loadDataset } from '@dann/data';
import { evaluate, selectBackend } from '@dann/models';
import { parseCommand, positiveInt, runMain } from '@dann/protocol';
import { loadRun } from './runs.ts';

const command = {
  name: 'calibrate-mnistm',
  summary: 'Evaluates an MNIST-trained source-only run on MNIST-M-style test sets of several texture contrasts, to pick the contrast at which the domain gap matches the paper (source-only ~0.52).',
  usage: 'npx nx run tools:calibrate-mnistm -- runs/NAME [--contrasts 0.4,0.6,0.8,1] [--limit 2000]',
  options: {
    contrasts: { type: 'string', description: 'comma-separated contrasts in [0, 1]', default: '0.4,0.5,0.6,0.7,0.8,0.9,1' },
    limit: { type: 'string', description: 'test images per contrast', default: '2000' },
    'data-dir': { type: 'string', description: 'data folder (default: $DANN_DATA_DIR or <workspace>/data)' },
  },
} as const;

runMain(async () => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const { values: v, positionals } = args;
  if (positionals.length !== 1) throw new Error('name one run directory trained on mnist, e.g. runs/NAME.');
  const contrasts = v.contrasts.split(',').map(Number);
  if (contrasts.some((c) => !(c >= 0 && c <= 1))) throw new Error(`--contrasts must be numbers in [0, 1], got "${v.contrasts}".`);
  const limit = positiveInt('limit', v.limit);
  await selectBackend({ backend: 'auto' });
  const { config, net } = loadRun(positionals[0]);
  if (config.options.source !== 'mnist') throw new Error(`${positionals[0]} was trained on ${config.options.source}; calibration needs a run trained on mnist.`);
  console.log(`mnist test accuracy: ${evaluate(net, loadDataset('mnist', 'test', { limit })).accuracy.toFixed(4)}`);
  console.log('| contrast | MNIST-M-style test accuracy |\n| --- | --- |');
  for (const c of contrasts) {
    const set = loadDataset('mnistm', 'test', { limit, mnistmContrast: c, dataDir: v['data-dir'] });
    console.log(`| ${c} | ${evaluate(net, set).accuracy.toFixed(4)} |`);
  }
  net.dispose();
});
