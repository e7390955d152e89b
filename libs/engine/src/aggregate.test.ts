import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aggregate, l2norm } from './aggregate.ts';

const part = (samples: number, values: number[]) => ({ samples, gradient: Float32Array.from(values) });
const close = (a: Float32Array, b: number[], tol = 1e-6) =>
  a.every((x, i) => Math.abs(x - b[i]) <= tol) && a.length === b.length;

test('mean is the sample-weighted mean and bounds nothing', () => {
  const r = aggregate([part(3, [1, 10]), part(1, [-3, 2e6])], 'mean');
  assert.ok(close(r.gradient, [0, (30 + 2e6) / 4]));
  assert.deepEqual([r.samples, r.clipped.length, r.rule], [4, 0, 'mean']);
});

test('clipped-mean leaves honest shards of similar norm alone (equal to mean)', () => {
  const parts = [part(16, [0.3, -0.2, 0.1]), part(16, [0.25, -0.1, 0.2]), part(15, [0.4, -0.3, 0.05])];
  const r = aggregate(parts, 'clipped-mean');
  assert.deepEqual(r.clipped, []);
  assert.deepEqual(r.gradient, aggregate(parts, 'mean').gradient);
});

test('clipped-mean scales a gradient multiplied by -1e6 down to the median norm, so the honest direction survives', () => {
  const honest = [0.3, -0.2, 0.1];
  const parts = [
    part(16, honest),
    part(
      16,
      honest.map((x) => x * 1.1),
    ),
    part(
      16,
      honest.map((x) => x * -1e6),
    ),
  ];
  const r = aggregate(parts, 'clipped-mean');
  assert.equal(r.clipped.length, 1);
  assert.equal(r.clipped[0].index, 2);
  assert.ok(
    Math.abs(r.clipped[0].bound - l2norm(Float32Array.from(honest.map((x) => x * 1.1)))) < 1e-6,
    'the bound is the median norm',
  );
  const dot = r.gradient.reduce((s, x, i) => s + x * honest[i], 0);
  assert.ok(dot > 0, 'the average still points the honest way');
  assert.ok(l2norm(r.gradient) < 2 * l2norm(Float32Array.from(honest)), `bounded norm, got ${l2norm(r.gradient)}`);
  // Just above the factor counts as an outlier; just below is left alone.
  assert.equal(aggregate([part(1, [1]), part(1, [1]), part(1, [3.01])], 'clipped-mean').clipped.length, 1);
  assert.equal(aggregate([part(1, [1]), part(1, [1]), part(1, [2.99])], 'clipped-mean').clipped.length, 0);
  // With two shards the lower median sets the bound: the poisoner cannot raise it.
  const two = aggregate(
    [
      part(16, honest),
      part(
        16,
        honest.map((x) => x * 1e6),
      ),
    ],
    'clipped-mean',
  );
  assert.deepEqual(
    two.clipped.map((c) => c.index),
    [1],
  );
  assert.ok(l2norm(two.gradient) <= l2norm(Float32Array.from(honest)) + 1e-6);
});

test('median and trimmed-mean are coordinate-wise and ignore one extreme shard; with fewer than three they act as clipped-mean', () => {
  const parts = [part(8, [1, 5]), part(8, [2, 4]), part(8, [3, 6]), part(8, [100, -100])];
  const med = aggregate(parts, 'median', 1e9);
  assert.deepEqual([...med.gradient], [2.5, 4.5]);
  const trimmed = aggregate([...parts, part(8, [4, 5])], 'trimmed-mean', 1e9);
  assert.ok(close(trimmed.gradient, [3, 14 / 3]), String(trimmed.gradient)); // one low and one high value dropped per coordinate
  assert.equal(trimmed.rule, 'trimmed-mean');
  const few = aggregate(parts.slice(0, 2), 'median');
  assert.equal(few.rule, 'clipped-mean');
  assert.deepEqual([...few.gradient], [1.5, 4.5]);
  assert.throws(() => aggregate([], 'mean'), /nothing to aggregate/);
});
