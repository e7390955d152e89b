import { join } from 'node:path';
import { DATASETS, isDatasetName, loadDataset, writeSetPngs } from '@dann/data';
import { oneOf, parseCommand, positiveInt, runMain } from '@dann/cli';

const command = {
  name: 'write-pngs',
  summary:
    'Writes the images of a test (or training) set as PNG files at their own size, each named NAME-INDEX-LABEL.png, so edge-demo:classify can score a model on real pictures.',
  usage: 'npx nx run tools:write-pngs -- usps --out usps-png [--limit 500] [--split test]',
  options: {
    out: { type: 'string', description: 'folder to write the files into', default: 'pngs' },
    split: { type: 'string', description: 'test or train', default: 'test' },
    limit: { type: 'string', description: 'only the first N images' },
    'data-dir': { type: 'string', description: 'data folder (default: $DANN_DATA_DIR or <workspace>/data)' },
  },
} as const;

runMain(() => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const { values: v, positionals } = args;
  const name = positionals[0];
  if (positionals.length !== 1 || !isDatasetName(name))
    throw new Error(`name one dataset: ${DATASETS.join(', ')} (e.g. usps).`);
  const split = oneOf('split', v.split, ['test', 'train'] as const);
  const limit = v.limit === undefined ? undefined : positiveInt('limit', v.limit);
  const set = loadDataset(name, split, { limit, dataDir: v['data-dir'], log: (l) => console.log(l) });
  const files = writeSetPngs(set, v.out, `${name}-${split}`);
  console.log(
    `wrote ${files.length} ${set.width}x${set.height} PNG files of ${set.name} into ${v.out}; score a model on them: npx nx run edge-demo:classify -- --model runs/main/model.onnx ${join(v.out, '*.png')}`,
  );
});
