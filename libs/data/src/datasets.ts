import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cachedImageSet } from './cache.ts';
import { loadSynthFonts } from './fonts.ts';
import { lightOnDark, takeFirst, type ImageSet } from './imageset.ts';
import { loadMnist, type Split } from './mnist.ts';
import { generateMnistM, MNISTM_DEFAULT_BRIGHTNESS, MNISTM_DEFAULT_CONTRAST, MNISTM_VERSION } from './mnistm.ts';
import { mixSeed } from './rng.ts';
import { loadSvhn } from './svhn.ts';
import { generateSynthDigits, SYNTH_VERSION } from './synth.ts';
import { loadUsps, uspsForm } from './usps.ts';

export const DATASETS = [
  'mnist',
  'svhn',
  'usps',
  'synth',
  'synth-hand',
  'synth-grey',
  'mnistm',
  'mnist-as-usps',
] as const;
export type DatasetName = (typeof DATASETS)[number];

export const SYNTH_DEFAULT_COUNT: Record<Split, number> = { train: 60000, test: 10000 };
export const DEFAULT_DATA_SEED = 1234;

export function isDatasetName(s: string): s is DatasetName {
  return (DATASETS as readonly string[]).includes(s);
}

/** The workspace root (the folder holding nx.json above this file), for default data folders. */
export function workspaceRoot(): string {
  let dir = import.meta.dirname;
  while (!existsSync(join(dir, 'nx.json'))) {
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
  return dir;
}

/** Where downloaded and generated data live: $DANN_DATA_DIR, else <workspace>/data. */
export function defaultDataDir(): string {
  return process.env.DANN_DATA_DIR ?? join(workspaceRoot(), 'data');
}

export interface LoadOptions {
  /** Data folder: svhn/ and usps/ hold the downloaded files, cache/ the generated sets. Default defaultDataDir(). */
  readonly dataDir?: string;
  /** Use only the first N images (generated sets generate only N). */
  readonly limit?: number;
  /** Seed of the generated sets (synth, mnistm); the test split uses a seed derived from it. */
  readonly seed?: number;
  /** MNIST-M texture contrast, 0..1. */
  readonly mnistmContrast?: number;
  /** MNIST-M brightest texture colour, (0, 1] of 255. */
  readonly mnistmBrightness?: number;
  readonly log?: (line: string) => void;
}

/** Loads one split of a dataset as uint8 images, generating and caching the synthetic ones on demand. */
export function loadDataset(name: DatasetName, split: Split, options: LoadOptions = {}): ImageSet {
  const dataDir = options.dataDir ?? defaultDataDir();
  const cache = { dir: join(dataDir, 'cache'), log: options.log };
  const seed = mixSeed(options.seed ?? DEFAULT_DATA_SEED, split === 'train' ? 1 : 2);
  const limit = options.limit;
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0))
    throw new Error(`limit must be a positive integer, got ${limit}.`);
  switch (name) {
    case 'mnist':
      return takeFirst(loadMnist(split), limit ?? Infinity);
    case 'svhn':
      return takeFirst(loadSvhn(split, join(dataDir, 'svhn')), limit ?? Infinity);
    case 'usps':
      return takeFirst(loadUsps(split, join(dataDir, 'usps')), limit ?? Infinity);
    case 'mnist-as-usps':
      return uspsForm(takeFirst(loadMnist(split), limit ?? Infinity), `${name}/${split}`);
    case 'synth':
    case 'synth-hand': {
      const count = Math.min(limit ?? SYNTH_DEFAULT_COUNT[split], SYNTH_DEFAULT_COUNT[split]);
      const fontSet = name === 'synth-hand' ? 'printed+handwriting' : 'printed';
      const fonts = [...new Set(loadSynthFonts(fontSet).map((f) => f.source))];
      const key = { kind: 'synth', version: SYNTH_VERSION, seed, count, fonts };
      return cachedImageSet(`${name}-${split}`, key, cache, () =>
        generateSynthDigits({ count, seed, fonts: fontSet, name: `${name}/${split}` }),
      );
    }
    case 'synth-grey':
      return lightOnDark(loadDataset('synth-hand', split, options), `${name}/${split}`);
    case 'mnistm': {
      const mnist = takeFirst(loadMnist(split), limit ?? Infinity);
      const contrast = options.mnistmContrast ?? MNISTM_DEFAULT_CONTRAST;
      const brightness = options.mnistmBrightness ?? MNISTM_DEFAULT_BRIGHTNESS;
      const key = { kind: 'mnistm', version: MNISTM_VERSION, seed, count: mnist.count, contrast, brightness };
      return cachedImageSet(`mnistm-${split}`, key, cache, () =>
        generateMnistM(mnist, { seed, contrast, brightness, name: `mnistm/${split}` }),
      );
    }
  }
}
