import { test } from 'node:test';
import assert from 'node:assert/strict';
import { epochPermutation, pairedBatches, shardIndices, splitBatch } from './sampler.ts';
import { createRng } from './rng.ts';

test('epoch permutation is a deterministic permutation that changes with epoch and seed', () => {
  const a = epochPermutation(1000, 1, 0);
  assert.deepEqual(a, epochPermutation(1000, 1, 0));
  assert.deepEqual(
    [...a].sort((x, y) => x - y),
    Array.from({ length: 1000 }, (_, i) => i),
  );
  assert.notDeepEqual(a, epochPermutation(1000, 1, 1));
  assert.notDeepEqual(a, epochPermutation(1000, 2, 0));
});

test('shards have equal sizes and cover every index; only the wrap-around padding repeats (world 1..8)', () => {
  for (const n of [1, 7, 64, 101, 1000]) {
    const order = epochPermutation(n, 3, 0);
    for (let world = 1; world <= 8; world++) {
      const shards = Array.from({ length: world }, (_, r) => shardIndices(order, r, world));
      const per = Math.ceil(n / world);
      for (const s of shards) assert.equal(s.length, per);
      const seen = new Map<number, number>();
      for (const s of shards) for (const i of s) seen.set(i, (seen.get(i) ?? 0) + 1);
      assert.equal(seen.size, n, `n=${n} world=${world}: some index never used`);
      const repeats = [...seen.values()].reduce((a, c) => a + c - 1, 0);
      assert.equal(repeats, per * world - n, `n=${n} world=${world}: repeats beyond the padding`);
    }
  }
  assert.throws(() => shardIndices(new Uint32Array(4), 3, 3), /rank 3 is outside 0\.\.2/);
});

test('splitBatch hands every index of a global batch to exactly one rank', () => {
  for (const len of [1, 5, 64, 65]) {
    const batch = Uint32Array.from({ length: len }, (_, i) => i * 3);
    for (let world = 1; world <= 8; world++) {
      const parts = Array.from({ length: world }, (_, r) => splitBatch(batch, r, world));
      assert.deepEqual(
        parts.flatMap((p) => [...p]),
        [...batch],
      );
      const sizes = parts.map((p) => p.length);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
    }
  }
});

test('pairedBatches pairs each source batch with as many target indices, over whole epochs', () => {
  const opts = { sourceCount: 100, targetCount: 30, batchSize: 16, seed: 4, epoch: 0 };
  const batches = [...pairedBatches(opts)];
  assert.equal(batches.length, 7);
  assert.deepEqual(
    batches.map((b) => b.source.length),
    [16, 16, 16, 16, 16, 16, 4],
  );
  const src = batches.flatMap((b) => [...b.source]).sort((a, b) => a - b);
  assert.deepEqual(
    src,
    Array.from({ length: 100 }, (_, i) => i),
  );
  for (const b of batches) {
    assert.equal(b.target.length, b.source.length);
    for (const t of b.target) assert.ok(t < 30);
  }
  // The target stream walks whole target epochs: its first 30 draws are a permutation of 0..29.
  const tgt = batches.flatMap((b) => [...b.target]);
  assert.deepEqual(
    tgt.slice(0, 30).sort((a, b) => a - b),
    Array.from({ length: 30 }, (_, i) => i),
  );
  // Deterministic, and the next epoch continues rather than repeats.
  assert.deepEqual([...pairedBatches(opts)], batches);
  const next = [...pairedBatches({ ...opts, epoch: 1 })];
  assert.notDeepEqual(next[0].source, batches[0].source);
  // Two ranks together use each source index of the epoch once, except the wrap-around padding.
  const r0 = [...pairedBatches({ ...opts, sourceCount: 101, rank: 0, world: 2 })].flatMap((b) => [...b.source]);
  const r1 = [...pairedBatches({ ...opts, sourceCount: 101, rank: 1, world: 2 })].flatMap((b) => [...b.source]);
  assert.equal(new Set([...r0, ...r1]).size, 101);
  assert.equal(r0.length, r1.length);
});

test('rng.fill gives exactly the numbers next() would, and leaves the generator after them', () => {
  const a = createRng(7),
    b = createRng(7);
  const out = new Float64Array(1000);
  a.fill(out, 10, 900);
  for (let i = 10; i < 900; i++) assert.equal(out[i], b.next());
  assert.equal(out[9], 0);
  assert.equal(a.next(), b.next());
});
