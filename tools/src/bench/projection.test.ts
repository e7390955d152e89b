import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  efficiency,
  halfEfficiencyCount,
  fitTwo,
  projectionTable,
  stepMs,
  TOPOLOGIES,
  type StepModel,
} from './projection.ts';

const model = (o: Partial<StepModel> = {}): StepModel => ({
  params: 25e6,
  gradientBytes: 100e6,
  computeMs: 100,
  link: { gbits: 10, latencyMs: 0.05 },
  costs: { cpuMsPerByte: 1e-7, updateMsPerParam: 2e-7 },
  fanout: 8,
  ...o,
});

test('with free links and a free coordinator every topology scales perfectly', () => {
  const free = model({ link: { gbits: 1e12, latencyMs: 0 }, costs: { cpuMsPerByte: 0, updateMsPerParam: 0 } });
  for (const t of TOPOLOGIES) for (const n of [2, 64, 1024]) assert.ok(Math.abs(efficiency(t, n, free) - 1) < 1e-6);
});

test("the star's step grows by 2 x n x |g| over the link and through the coordinator per doubling; the ring's bandwidth term stays bounded", () => {
  const m = model();
  const n = 16;
  // 16 more gradients in and updates out: 2 x 16 x 100 MB at 10 Gbit/s, plus 2 x 16 x 100 MB x 1e-7 ms/B.
  const expected = 2 * ((16 * 100e6 * 8) / 10e6) + 2 * 16 * 100e6 * 1e-7;
  assert.ok(Math.abs(stepMs('star', 2 * n, m) - stepMs('star', n, m) - expected) < 1e-6);
  const ringWire = (k: number) =>
    stepMs('ring', k, model({ link: { gbits: 10, latencyMs: 0 }, costs: { cpuMsPerByte: 0, updateMsPerParam: 0 } })) -
    100;
  assert.ok(ringWire(1024) <= 2 * ((100e6 * 8) / 10e6) + 1e-6); // never more than 2 |g| per trainer
  assert.ok(ringWire(1024) > ringWire(2));
  // A 10 MB gradient: the star adds 2 x 8 ms on the wire + 2 ms of coordinator CPU per trainer, so it stays over
  // half efficiency up to 4 trainers (18 x 4 + 5 <= 100); the ring moves at most 2 |g| per trainer whatever their
  // number, and its 2(n - 1) latencies cross the line between 512 and 1024.
  const small = model({ params: 2.5e6, gradientBytes: 10e6 });
  assert.equal(halfEfficiencyCount('star', small), 4);
  assert.equal(halfEfficiencyCount('ring', small), 512);
});

test('a line is fitted by least squares, and the projection names every topology and link', () => {
  const { a, b } = fitTwo([1, 2, 3, 4].map((x) => ({ u: x, v: x * x, y: 3 * x + 2 * x * x })));
  assert.ok(Math.abs(a - 3) < 1e-9 && Math.abs(b - 2) < 1e-9);
  assert.throws(() => fitTwo([1, 2].map((x) => ({ u: x, v: 2 * x, y: x }))), /do not separate the two costs/);
  const table = projectionTable('paper-svhn f32', model());
  for (const t of ['star', 'tree (fanout 8)', 'ring'])
    assert.match(table, new RegExp(`\\| ${t.replace(/[()]/g, '\\$&')} \\| 10 Gbit/s \\|`));
  assert.match(table, /\| 1024 trainers \| efficiency ≥ 50% up to \|/);
});
