import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DATASETS, isDatasetName, loadDataset, type DatasetName, type ImageSet, type Split } from '@dann/data';
import { parseCommand, positiveInt, runMain } from '@dann/cli';
import { renderGrid } from './grid.ts';

const command = {
  name: 'preview',
  summary: 'Writes a labelled grid of dataset images as PNG, for a person to look at.',
  usage: `npx nx run tools:preview -- --dataset ${DATASETS.join('|')}|all --count 64 --out grid.png`,
  options: {
    dataset: {
      type: 'string',
      description: `one of ${DATASETS.join(', ')}, or all (then --out is a folder)`,
      default: 'synth',
    },
    count: { type: 'string', description: 'images in the grid', default: '64' },
    split: { type: 'string', description: 'train or test', default: 'train' },
    seed: { type: 'string', description: 'seed of the generated sets (synth, mnistm)', default: '1234' },
    out: { type: 'string', description: 'PNG file to write (a folder with --dataset all)', default: 'grid.png' },
    'data-dir': { type: 'string', description: 'data folder (default: $DANN_DATA_DIR or <workspace>/data)' },
  },
} as const;

runMain(() => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const { values: v } = args;
  const count = positiveInt('count', v.count);
  const seed = positiveInt('seed', v.seed);
  if (v.split !== 'train' && v.split !== 'test') throw new Error(`--split must be train or test, got "${v.split}".`);
  const split: Split = v.split;
  const all = v.dataset === 'all';
  if (!all && !isDatasetName(v.dataset))
    throw new Error(`--dataset must be one of ${DATASETS.join(', ')} or all, got "${v.dataset}".`);
  const names: DatasetName[] = all ? [...DATASETS] : [v.dataset as DatasetName];
  for (const name of names) {
    const out = all ? join(v.out, `${name}-${split}.png`) : v.out;
    let set: ImageSet;
    try {
      set = loadDataset(name, split, { limit: count, seed, dataDir: v['data-dir'], log: (l) => console.log(l) });
    } catch (err) {
      if (all && (name === 'svhn' || name === 'usps')) {
        console.log(`skipped ${name}: ${(err as Error).message}`);
        continue;
      }
      throw err;
    }
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, renderGrid(set, count));
    console.log(`wrote ${out} (${set.name}, ${Math.min(count, set.count)} images)`);
  }
});
