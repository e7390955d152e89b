import { join } from 'node:path';
import { defaultDataDir, loadDataset, loadSvhn, type DatasetName, type Split } from '@dann/data';
import { parseCommand, runMain } from '@dann/protocol';
import { downloadFile, type RemoteFile } from './download.ts';

/**
 * The official SVHN cropped-digit files. The MD5s are the ones torchvision publishes;
 * no SHA-256 is published, so the SHA-256 of the first verified download is recorded beside
 * the file (<file>.sha256) and checked from then on.
 */
export const SVHN_REMOTE: Record<Split, RemoteFile> = {
  train: { url: 'http://ufldl.stanford.edu/housenumbers/train_32x32.mat', file: 'train_32x32.mat', md5: 'e26dedcc434d2e4c54c9b2d4a06d8373' },
  test: { url: 'http://ufldl.stanford.edu/housenumbers/test_32x32.mat', file: 'test_32x32.mat', md5: 'eb5a983be6a315427106f1b164d9cef3' },
};

const command = {
  name: 'download-data',
  summary: 'Fetches SVHN (with resume and checksums) or generates and caches the synthetic sets (synth, mnistm).',
  usage: 'npx nx run tools:download-data -- svhn|synth|mnistm|all [--data-dir DIR]',
  options: {
    'data-dir': { type: 'string', description: 'data folder (default: $DANN_DATA_DIR or <workspace>/data)' },
  },
} as const;

runMain(async () => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const dataDir = args.values['data-dir'] ?? defaultDataDir();
  const wanted = args.positionals.length ? args.positionals : ['all'];
  for (const what of wanted) {
    if (!['svhn', 'synth', 'mnistm', 'all'].includes(what)) throw new Error(`unknown dataset "${what}": use svhn, synth, mnistm or all.`);
  }
  const want = (name: string) => wanted.includes(name) || wanted.includes('all');
  const log = (line: string) => console.log(line);
  if (want('svhn')) {
    const dir = join(dataDir, 'svhn');
    try {
      for (const split of ['train', 'test'] as const) {
        await downloadFile(SVHN_REMOTE[split], dir, { log });
        const set = loadSvhn(split, dir);
        console.log(`svhn/${split}: ${set.count} images readable`);
      }
    } catch (err) {
      if (!wanted.includes('all')) throw err;
      console.log(`svhn skipped: ${(err as Error).message}`);
    }
  }
  for (const name of ['synth', 'mnistm'] as DatasetName[]) {
    if (!want(name)) continue;
    for (const split of ['train', 'test'] as const) {
      const t0 = performance.now();
      const set = loadDataset(name, split, { dataDir, log });
      console.log(`${set.name}: ${set.count} images ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
});
