import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  defaultDataDir,
  loadDataset,
  loadSvhn,
  loadUsps,
  USPS_FILES,
  USPS_SHA256,
  workspaceRoot,
  type DatasetName,
  type Split,
} from '@dann/data';
import { parseCommand, runMain } from '@dann/cli';
import { copyVerified, downloadFile, type RemoteFile } from './download.ts';

/**
 * The official SVHN cropped-digit files. The MD5s are the ones torchvision publishes;
 * no SHA-256 is published, so the SHA-256 of the first verified download is recorded beside
 * the file (<file>.sha256) and checked from then on.
 */
export const SVHN_REMOTE: Record<Split, RemoteFile> = {
  train: {
    url: 'http://ufldl.stanford.edu/housenumbers/train_32x32.mat',
    file: 'train_32x32.mat',
    md5: 'e26dedcc434d2e4c54c9b2d4a06d8373',
  },
  test: {
    url: 'http://ufldl.stanford.edu/housenumbers/test_32x32.mat',
    file: 'test_32x32.mat',
    md5: 'eb5a983be6a315427106f1b164d9cef3',
  },
};

/**
 * USPS as distributed with The Elements of Statistical Learning (datasets page "zip"; web.stanford.edu/~hastie
 * redirects here). Their SHA-256s are pinned: a file is kept only if it matches.
 */
export const USPS_REMOTE: Record<Split, RemoteFile> = {
  train: {
    url: `https://hastie.su.domains/ElemStatLearn/datasets/${USPS_FILES.train}`,
    file: USPS_FILES.train,
    sha256: USPS_SHA256.train,
  },
  test: {
    url: `https://hastie.su.domains/ElemStatLearn/datasets/${USPS_FILES.test}`,
    file: USPS_FILES.test,
    sha256: USPS_SHA256.test,
  },
};

const command = {
  name: 'download-data',
  summary:
    'Fetches SVHN and USPS (with resume and checksums; USPS also copied from a folder with --from) or generates and caches the synthetic sets (synth, mnistm).',
  usage: 'npx nx run tools:download-data -- svhn|usps|synth|mnistm|all [--data-dir DIR] [--from DIR]',
  options: {
    'data-dir': { type: 'string', description: 'data folder (default: $DANN_DATA_DIR or <workspace>/data)' },
    from: {
      type: 'string',
      description:
        'usps: copy zip.train.gz and zip.test.gz from this folder (checksums verified) instead of downloading them',
    },
  },
} as const;

/** The shared read-only copy beside the checkout on machines without internet, if there is one. */
function sharedUspsDir(): string | undefined {
  const dir = resolve(workspaceRoot(), '..', 'shared', 'data', 'usps');
  return existsSync(join(dir, USPS_FILES.train)) ? dir : undefined;
}

runMain(async () => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const dataDir = args.values['data-dir'] ?? defaultDataDir();
  const wanted = args.positionals.length ? args.positionals : ['all'];
  for (const what of wanted) {
    if (!['svhn', 'usps', 'synth', 'mnistm', 'all'].includes(what))
      throw new Error(`unknown dataset "${what}": use svhn, usps, synth, mnistm or all.`);
  }
  const want = (name: string) => wanted.includes(name) || wanted.includes('all');
  const from = args.values.from;
  if (from !== undefined && !want('usps')) throw new Error('--from applies to usps only; add usps to the datasets.');
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
  if (want('usps')) {
    const dir = join(dataDir, 'usps');
    try {
      for (const split of ['train', 'test'] as const) {
        if (from !== undefined) {
          await copyVerified(USPS_REMOTE[split], from, dir, { log });
        } else {
          try {
            await downloadFile(USPS_REMOTE[split], dir, { log });
          } catch (err) {
            const shared = sharedUspsDir();
            const offline = `run \`npx nx run tools:download-data -- usps --from DIR\` with a folder holding zip.train.gz and zip.test.gz${shared ? ` (there is one at ${shared})` : ''}`;
            throw new Error(`${(err as Error).message.replace(/\.$/, '')}, or ${offline}.`);
          }
        }
        const set = loadUsps(split, dir);
        console.log(`usps/${split}: ${set.count} images readable`);
      }
    } catch (err) {
      if (!wanted.includes('all')) throw err;
      console.log(`usps skipped: ${(err as Error).message}`);
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
