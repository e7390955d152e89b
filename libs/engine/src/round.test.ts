import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StepRound } from './round.ts';

const range = (n: number, from = 0) => Uint32Array.from({ length: n }, (_, i) => from + i);
const grad = (values: number[]) => Float32Array.from(values);

test('a batch splits over trainers in rank order; the average is weighted by samples', () => {
  const round = new StepRound(0, range(5), range(5, 100), [7, 3], 2);
  const [a, b] = round.pending;
  assert.deepEqual([a.trainer, [...a.source], [...a.target]], [7, [0, 1, 2], [100, 101, 102]]);
  assert.deepEqual([b.trainer, [...b.source]], [3, [3, 4]]);
  assert.equal(round.receive(a.id, 7, 3, grad([1, 10])), null);
  assert.equal(round.complete, false);
  assert.throws(() => round.average(), /still waits for 1 shard/);
  assert.equal(round.receive(b.id, 3, 2, grad([6, -5])), null);
  const { gradient, samples } = round.average();
  assert.equal(samples, 5);
  assert.ok(Math.abs(gradient[0] - (3 * 1 + 2 * 6) / 5) < 1e-6 && Math.abs(gradient[1] - (3 * 10 - 2 * 5) / 5) < 1e-6);
  assert.deepEqual(
    round.usedSource().sort((x, y) => x - y),
    [0, 1, 2, 3, 4],
  );
});

test('bad gradients are rejected with a reason and never reach the average', () => {
  const round = new StepRound(4, range(4), range(4), [1, 2], 3);
  const [a, b] = round.pending;
  assert.match(round.receive(a.id, 2, 2, grad([0, 0, 0]))!, /not assigned to trainer 2/);
  assert.match(round.receive(a.id, 1, 3, grad([0, 0, 0]))!, /has 2 samples, the gradient claims 3/);
  assert.match(round.receive(a.id, 1, 2, grad([0, 0]))!, /2 values, the model 3/);
  assert.match(round.receive(a.id, 1, 2, grad([0, NaN, 0]))!, /non-finite value at 1/);
  assert.match(round.receive(99, 1, 2, grad([0, 0, 0]))!, /shard 99/);
  assert.equal(round.receive(a.id, 1, 2, grad([1, 1, 1])), null);
  assert.match(round.receive(a.id, 1, 2, grad([5, 5, 5]))!, /already answered/);
  assert.equal(round.receive(b.id, 2, 2, grad([3, 3, 3])), null);
  assert.deepEqual([...round.average().gradient], [2, 2, 2]);
});

test('a trainer that drops mid-step has its shard re-planned: every sample used exactly once', () => {
  const round = new StepRound(1, range(9), range(9), [1, 2, 3], 1);
  const [s1, s2, s3] = round.pending;
  assert.equal(round.receive(s1.id, 1, 3, grad([1])), null);
  const replanned = round.drop(2, [1, 3]);
  assert.deepEqual(
    replanned.map((s) => [s.trainer, [...s.source]]),
    [
      [1, [3, 4]],
      [3, [5]],
    ],
  );
  assert.equal(round.receive(s2.id, 2, 3, grad([100])) !== null, true, 'the dropped trainer is no longer heard');
  for (const s of [s3, ...replanned])
    assert.equal(round.receive(s.id, s.trainer, s.source.length, grad([s.source.length])), null);
  assert.deepEqual(
    round.usedSource().sort((x, y) => x - y),
    [...range(9)],
  );
  // Equal to the plain mean over 9 samples of per-sample gradient 1 (shards report their mean).
  const { gradient, samples } = round.average();
  assert.equal(samples, 9);
  assert.ok(Math.abs(gradient[0] - (3 * 1 + 2 * 2 + 1 * 1 + 3 * 3) / 9) < 1e-6);
  assert.equal(round.drop(2, [1, 3]).length, 0, 'nothing left to re-plan');
  const lonely = new StepRound(2, range(2), range(2), [5], 1);
  assert.throws(() => lonely.drop(5, []), /no trainer left/);
});

test('the average is the same whatever order the gradients arrive in (summed in shard order)', () => {
  const run = (order: number[]) => {
    const round = new StepRound(0, range(6), range(6), [1, 2, 3], 4);
    const shards = round.pending;
    for (const k of order)
      round.receive(shards[k].id, shards[k].trainer, 2, grad([0.1 * (k + 1), 1e-8 * k, 3 + k, -k]));
    return round.average().gradient;
  };
  assert.deepEqual(run([0, 1, 2]), run([2, 0, 1]));
});

test("an outlier's shard is rejected and recomputed by others once; the recomputed answer is never rejected again", () => {
  const round = new StepRound(0, range(6), range(6), [1, 2, 3], 2);
  const [a, b, c] = round.pending;
  round.receive(a.id, 1, 2, grad([1, 1]));
  round.receive(b.id, 2, 2, grad([1.2, 0.8]));
  round.receive(c.id, 3, 2, grad([-1e6, -1e6]));
  const outliers = round.outliers(3);
  assert.deepEqual(
    outliers.map((o) => [o.shard, o.trainer]),
    [[c.id, 3]],
  );
  const again = round.reject(c.id, [1, 2]);
  assert.deepEqual(
    again.map((s) => [s.trainer, [...s.source]]),
    [
      [1, [4]],
      [2, [5]],
    ],
  );
  assert.equal(round.complete, false);
  for (const s of again) round.receive(s.id, s.trainer, 1, grad([50, 50])); // honest but large: an outlier again
  assert.deepEqual(round.outliers(3), [], 'recomputed shards are not rejected twice');
  const { gradient, clipped } = round.average('clipped-mean');
  assert.deepEqual(
    clipped.map((x) => x.trainer),
    [1, 2],
  );
  assert.ok(
    gradient.every((x) => x > 0 && x < 2),
    String(gradient),
  );
  assert.deepEqual(
    round.usedSource().sort((x, y) => x - y),
    [...range(6)],
    'every sample once',
  );
  assert.deepEqual(round.contributors().sort(), [1, 2]);
  assert.throws(() => round.reject(c.id, [1]), /no answer to reject/);
});
