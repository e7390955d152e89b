import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDataset } from './datasets.ts';
import { lightOnDark } from './imageset.ts';

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

test('synth-grey is synth-hand in grey with light ink on a dark ground, as MNIST', { timeout: 60_000 }, () => {
  // One dark-on-light colour image (inverted) and one light-on-dark grey image (kept).
  const dark = new Uint8Array(4 * 4 * 3).fill(200);
  dark.fill(10, 0, 9); // three dark pixels: the ink
  const light = new Uint8Array(16).fill(5);
  light[6] = 250;
  const colour = lightOnDark({
    name: 'c',
    count: 1,
    height: 4,
    width: 4,
    channels: 3,
    images: dark,
    labels: Uint8Array.of(1),
  });
  assert.equal(colour.channels, 1);
  assert.deepEqual([...colour.images.subarray(0, 4)], [245, 245, 245, 55]);
  const grey = lightOnDark({
    name: 'g',
    count: 1,
    height: 4,
    width: 4,
    channels: 1,
    images: light,
    labels: Uint8Array.of(2),
  });
  assert.deepEqual(grey.images, light);
  const dataDir = mkdtempSync(join(tmpdir(), 'dann-data-'));
  try {
    const opts = { dataDir, limit: 40 };
    const set = loadDataset('synth-grey', 'train', opts);
    assert.equal(set.channels, 1);
    assert.deepEqual(set.labels, loadDataset('synth-hand', 'train', opts).labels);
    for (let i = 0; i < set.count; i++) {
      const img = [...set.images.subarray(i * 1024, (i + 1) * 1024)];
      const mean = img.reduce((a, b) => a + b, 0) / img.length;
      assert.ok(mean >= img.sort((a, b) => a - b)[512], `image ${i}: its ink is darker than its ground`);
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
