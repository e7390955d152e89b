import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDataset } from './datasets.ts';

test('loads every offline dataset through one entry point, caching the generated ones', { timeout: 60_000 }, () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'dann-data-'));
  try {
    const logs: string[] = [];
    const opts = { dataDir, limit: 20, seed: 9, log: (l: string) => logs.push(l) };
    const mnist = loadDataset('mnist', 'test', opts);
    assert.equal(mnist.count, 20);
    assert.equal(mnist.channels, 1);
    const synthTrain = loadDataset('synth', 'train', opts);
    const synthTest = loadDataset('synth', 'test', opts);
    assert.equal(synthTrain.count, 20);
    assert.notDeepEqual(synthTrain.images, synthTest.images, 'train and test must use different seeds');
    const mnistm = loadDataset('mnistm', 'test', opts);
    assert.deepEqual(mnistm.labels, mnist.labels);
    assert.equal(readdirSync(join(dataDir, 'cache')).length, 3);
    assert.equal(logs.filter((l) => l.startsWith('built')).length, 3);
    // A second load comes from the cache, byte-identical.
    assert.deepEqual(loadDataset('synth', 'train', opts).images, synthTrain.images);
    assert.equal(logs.filter((l) => l.startsWith('built')).length, 3);
    assert.throws(
      () => loadDataset('svhn', 'train', opts),
      /train_32x32\.mat is missing; run `npx nx run tools:download-data -- svhn`/,
    );
    assert.throws(() => loadDataset('mnist', 'train', { ...opts, limit: 0 }), /limit must be a positive integer/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
