import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { loadDataset } from '@dann/data';
import { evaluate } from '@dann/training';
import { selectBackend } from '@dann/backend';
import { oneOf, parseCommand, positiveInt, runMain } from '@dann/cli';
import { resultMarkdown, resultsTable, type RunResult } from './report.ts';
import { loadRun } from './runs.ts';

const command = {
  name: 'evaluate',
  summary:
    'Evaluates trained runs on the full source and target test sets: results table, per-class accuracy, confusion matrices.',
  usage: 'npx nx run tools:evaluate -- runs/NAME [runs/OTHER ...] [--checkpoint best|last]',
  options: {
    checkpoint: { type: 'string', description: 'best (lowest source-validation loss) or last', default: 'best' },
    limit: { type: 'string', description: 'evaluate only the first N test images per domain' },
    'data-dir': { type: 'string', description: 'data folder (default: $DANN_DATA_DIR or <workspace>/data)' },
  },
} as const;

runMain(async () => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const { values: v, positionals: runs } = args;
  if (runs.length === 0) throw new Error('name at least one run directory, e.g. runs/NAME.');
  const checkpoint = oneOf('checkpoint', v.checkpoint, ['best', 'last'] as const);
  const limit = v.limit === undefined ? undefined : positiveInt('limit', v.limit);
  await selectBackend({ backend: 'auto' });
  const results: RunResult[] = [];
  for (const run of runs) {
    const { config, file, checkpoint: ckpt, net } = loadRun(run, checkpoint);
    const dataOpts = { dataDir: v['data-dir'], limit, log: (l: string) => console.log(l) };
    const { source, target } = config.run.data;
    const { method } = config.run.train;
    const result: RunResult = {
      run: basename(run),
      network: ckpt.arch,
      method,
      pair: `${source} -> ${target}`,
      checkpoint: basename(file),
      step: ckpt.step,
      source: await evaluate(net, loadDataset(source, 'test', dataOpts)),
      target: await evaluate(net, loadDataset(target, 'test', dataOpts)),
    };
    net.dispose();
    writeFileSync(join(run, 'results.md'), resultMarkdown(result));
    writeFileSync(join(run, 'results.json'), JSON.stringify(result, null, 2) + '\n');
    results.push(result);
  }
  console.log(resultsTable(results));
  console.log(`\nper-class accuracy and confusion matrices: ${runs.map((r) => join(r, 'results.md')).join(', ')}`);
});
