import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { gradientReversal } from './grl.ts';
import { lambdaSchedule, lrSchedule, progress } from './schedules.ts';
import { PRESETS, paramSpecs, paramCount, type Architecture } from './architecture.ts';
import { applyUpdate, createOptimizerState } from './optimizer.ts';
import { decodeCheckpoint, encodeCheckpoint } from './checkpoint.ts';
import { Trainer, type TrainConfig } from './trainer.ts';
import { selectBackend } from '@dann/backend';
import { evaluate } from './evaluate.ts';
import { toyConfig, toyDomain } from './testing/toy.ts';
import { DannNetwork } from './network.ts';
import { computeGradient } from './step.ts';
import { domainAdversarial, labelCrossEntropy, objectivesOf, targetEntropy } from './objectives/index.ts';
import { architectureOf } from './trainer.ts';
import { preprocessBatch } from '@dann/data';

/** The toy network without dropout, for gradient checks that compare passes with different batch layouts. */
function toyWithoutDropout(): Architecture {
  const base = toyConfig().architecture!;
  return {
    ...base,
    name: 'tiny-no-dropout',
    features: base.features.filter((l) => l.kind !== 'dropout'),
    label: base.label.filter((l) => l.kind !== 'dropout'),
  };
}

before(async () => {
  await selectBackend({ backend: 'wasm' });
});

test('GRL: identity forward, exactly -lambda times the identity gradient backward', () => {
  const x = tf.tensor2d([
    [1, -2, 3],
    [0.5, 4, -1],
  ]);
  const w = tf.tensor2d([
    [0.3, -1.2, 2],
    [1, 0.25, -3],
  ]);
  for (const lambda of [0, 0.37, 1, 2.5]) {
    assert.deepEqual(gradientReversal(x, lambda).arraySync(), x.arraySync());
    const plain = tf
      .grad((v: tf.Tensor) => tf.sum(tf.mul(v, w)))(x)
      .dataSync();
    const reversed = tf
      .grad((v: tf.Tensor) => tf.sum(tf.mul(gradientReversal(v, lambda), w)))(x)
      .dataSync();
    reversed.forEach((g, i) =>
      assert.ok(g === Math.fround(Math.fround(-lambda) * plain[i]), `lambda ${lambda}: ${g} vs ${plain[i]}`),
    );
  }
});

test('schedules follow the paper', () => {
  assert.equal(lambdaSchedule(0), 0);
  assert.ok(Math.abs(lambdaSchedule(1) - (2 / (1 + Math.exp(-10)) - 1)) < 1e-12);
  assert.ok(Math.abs(lambdaSchedule(0.5, 0.3) - 0.3 * (2 / (1 + Math.exp(-5)) - 1)) < 1e-12);
  for (let k = 0; k < 10; k++) assert.ok(lambdaSchedule((k + 1) / 10) > lambdaSchedule(k / 10));
  assert.equal(lrSchedule(0, 0.01), 0.01);
  assert.ok(Math.abs(lrSchedule(1, 0.01) - 0.01 / 11 ** 0.75) < 1e-15);
  assert.equal(progress(0, 100), 0);
  assert.equal(progress(99, 100), 1);
});

test('presets have the documented sizes', () => {
  const seed = paramSpecs(PRESETS.seed);
  assert.equal(paramCount(seed, ['features', 'label']), 1_262_474);
  assert.equal(paramCount(seed, ['domain']), 512 * 512 + 512 + 512 * 32 + 32 + 32 * 2 + 2);
  // paper: 5x5x3x32 + 32, 5x5x32x48 + 48, 8*8*48 -> 100 -> 100 -> 10
  assert.equal(paramCount(paramSpecs(PRESETS.paper), ['features', 'label']), 2432 + 38448 + 307300 + 10100 + 1010);
  assert.ok(paramCount(paramSpecs(PRESETS['paper-svhn'])) > 10_000_000);
});

test('SGD momentum matches the hand computation; a NaN gradient changes nothing', () => {
  const w = Float32Array.from([1, 2]);
  const s = createOptimizerState({ kind: 'sgd', momentum: 0.9 }, w);
  applyUpdate(w, Float32Array.from([1, -1]), s, { kind: 'sgd', momentum: 0.9 }, 0.1);
  applyUpdate(w, Float32Array.from([1, -1]), s, { kind: 'sgd', momentum: 0.9 }, 0.1);
  // v1 = g, w1 = w0 - 0.1 g; v2 = 0.9 g + g, w2 = w1 - 0.19 g
  assert.ok(Math.abs(w[0] - (1 - 0.29)) < 1e-6 && Math.abs(w[1] - (2 + 0.29)) < 1e-6);
  const before = Float32Array.from(w);
  assert.throws(
    () => applyUpdate(w, Float32Array.from([NaN, 0]), s, { kind: 'sgd' }, 0.1),
    /NaN or Infinity \(at update 3\); the weights were not changed/,
  );
  assert.deepEqual(w, before);
  assert.equal(s.step, 2);
  const info = applyUpdate(w, Float32Array.from([30, 40]), s, { kind: 'sgd', clipNorm: 5 }, 0);
  assert.equal(info.gradNorm, 50);
  assert.equal(info.clipped, true);
});

test('the weight average (mean teacher) follows the updates with the ramped decay', () => {
  const config = { kind: 'sgd', momentum: 0, ema: 0.99 } as const;
  const w = Float32Array.from([1, -1]);
  const s = createOptimizerState(config, w);
  assert.deepEqual([...s.ema], [1, -1]);
  applyUpdate(w, Float32Array.from([1, 1]), s, config, 0.5); // w = [0.5, -1.5]; a = 2/11
  const a = 2 / 11;
  assert.ok(Math.abs(s.ema[0] - (a * 1 + (1 - a) * 0.5)) < 1e-6);
  assert.ok(Math.abs(s.ema[1] - (a * -1 + (1 - a) * -1.5)) < 1e-6);
  assert.deepEqual([...w], [0.5, -1.5], 'the weights themselves are the plain SGD step');
  for (let i = 0; i < 2000; i++) applyUpdate(w, Float32Array.from([0, 0]), s, config, 0.5);
  assert.ok(Math.abs(s.ema[0] - 0.5) < 1e-6, 'with the weights still, the average converges to them');
  assert.equal(createOptimizerState({ kind: 'adam' }, w).ema.length, 0, 'no average unless asked for');
});

/** A mean-teacher config for the toy problem: augmentation, the weight average and its terms. */
const meanTeacher = (overrides: Partial<TrainConfig> = {}) =>
  toyConfig({
    method: 'mean-teacher',
    augment: 'affine',
    optimizer: { kind: 'adam', ema: 0.9 },
    meanTeacher: { consistency: 3, confidence: 0.5, classBalance: 0.3 },
    ...overrides,
  });

for (const method of ['source-only', 'dann', 'mean-teacher'] as const) {
  test(`${method}: the loss falls on a learnable toy problem`, { timeout: 120_000 }, async () => {
    const source = toyDomain(320, 1, 'source');
    const target = toyDomain(320, 2, 'target');
    const config = method === 'mean-teacher' ? meanTeacher({ epochs: 3 }) : toyConfig({ method, epochs: 3 });
    const trainer = new Trainer(config, source, target);
    const losses: number[] = [];
    const domainAcc: number[] = [];
    while (!trainer.done) {
      const r = await trainer.trainStep();
      losses.push(r.labelLoss);
      domainAcc.push(r.domainAccuracy);
    }
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    const first = mean(losses.slice(0, 5)),
      last = mean(losses.slice(-5));
    assert.ok(last < 0.5 * first, `label loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
    assert.ok((await evaluate(trainer.net, toyDomain(200, 3, 'source'))).accuracy > 0.5);
    assert.equal(domainAcc.every(Number.isNaN), method !== 'dann');
    trainer.dispose();
  });
}

for (const config of [
  toyConfig({ epochs: 2, optimizer: { kind: 'sgd', momentum: 0.9 }, lr: 0.02, lrSchedule: 'paper' }),
  meanTeacher({ epochs: 2 }),
])
  test(
    `${config.method}: save -> load -> continue takes exactly the steps of an uninterrupted run`,
    {
      timeout: 60_000,
    },
    () => resumeMatches(config),
  );

async function resumeMatches(config: TrainConfig): Promise<void> {
  const source = toyDomain(96, 4, 'source');
  const target = toyDomain(64, 5, 'target');
  const straight = new Trainer(config, source, target);
  for (let i = 0; i < 9; i++) await straight.trainStep();

  const first = new Trainer(config, source, target);
  for (let i = 0; i < 5; i++) await first.trainStep(); // crosses into epoch 2 after step 6: resume mid-epoch 1
  const saved = encodeCheckpoint(first.checkpoint({ note: 'mid-run' }));
  first.dispose();
  const resumed = Trainer.fromCheckpoint(decodeCheckpoint(saved), source, target);
  assert.equal(resumed.step, 5);
  for (let i = 0; i < 4; i++) await resumed.trainStep();

  assert.deepEqual(resumed.weights, straight.weights);
  assert.deepEqual(resumed.optimizer.m, straight.optimizer.m);
  assert.deepEqual(resumed.optimizer.ema, straight.optimizer.ema);
  assert.equal(resumed.optimizer.ema.length, config.optimizer.ema ? resumed.weights.length : 0);
  assert.deepEqual(await resumed.net.getWeights(), await straight.net.getWeights());
  straight.dispose();
  resumed.dispose();
}

test('a corrupt or truncated checkpoint is refused with one sentence', () => {
  const trainer = new Trainer(toyConfig(), toyDomain(16, 1, 'source'), toyDomain(16, 2, 'target'));
  const bytes = encodeCheckpoint(trainer.checkpoint());
  trainer.dispose();
  const flipped = Buffer.from(bytes);
  flipped[flipped.length - 3] ^= 1;
  assert.throws(() => decodeCheckpoint(flipped, 'c.bin'), /c\.bin: checksum mismatch; the file is corrupt\./);
  assert.throws(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 4), 'c.bin'), /truncated or corrupt/);
  assert.throws(() => decodeCheckpoint(Buffer.from('hello world!'), 'c.bin'), /not a checkpoint file/);
});

test('training keeps tensor memory flat across steps', { timeout: 60_000 }, async () => {
  const trainer = new Trainer(toyConfig({ epochs: 2 }), toyDomain(64, 1, 'source'), toyDomain(64, 2, 'target'));
  await trainer.trainStep();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) await trainer.trainStep();
  assert.equal(tf.memory().numTensors, before);
  trainer.dispose();
});

test("with sample ids, a batch split in two gives the whole batch's gradient (sample-weighted), dropout included", async () => {
  await selectBackend({ backend: 'wasm' });
  const config = toyConfig();
  const net = new DannNetwork(architectureOf(config), DannNetwork.initialWeights(architectureOf(config), 3));
  const src = toyDomain(8, 1, 'source'),
    tgt = toyDomain(8, 2, 'target');
  const all = Uint32Array.from({ length: 8 }, (_, i) => i);
  const part = (idx: Uint32Array) =>
    computeGradient(
      net,
      {
        source: preprocessBatch(src, idx),
        target: preprocessBatch(tgt, idx),
        sourceLabels: Uint8Array.from(idx, (i) => src.labels[i]),
        ids: { source: idx, target: idx },
      },
      { objectives: objectivesOf({ method: 'dann', domainWeight: 1 }), lambda: 0.7, seed: 11 },
    );
  const whole = (await part(all)).gradient;
  const a = await part(all.subarray(0, 5)),
    b = await part(all.subarray(5));
  let diff = 0,
    scale = 0;
  for (let i = 0; i < whole.length; i++) {
    diff = Math.max(diff, Math.abs((5 * a.gradient[i] + 3 * b.gradient[i]) / 8 - whole[i]));
    scale = Math.max(scale, Math.abs(whole[i]));
  }
  assert.ok(diff / scale < 1e-5, `relative difference ${diff / scale}`);
  net.dispose();
});

test("mean-teacher: a batch split over two trainers gives the whole batch's gradient, the teacher's views included", async () => {
  await selectBackend({ backend: 'wasm' });
  // Without the class-balance term, whose batch mean is over each trainer's shard.
  const config = meanTeacher({ meanTeacher: { consistency: 3, confidence: 0.2, classBalance: 0 } });
  const trainer = new Trainer(config, toyDomain(32, 1, 'source'), toyDomain(32, 2, 'target'));
  for (let i = 0; i < 3; i++) await trainer.trainStep(); // a teacher apart from the student
  const b = trainer.batchAt(trainer.step);
  const seed = trainer.plan.seed(trainer.step);
  const whole = (await trainer.gradientFor(b.source, b.target, 0, seed)).gradient;
  const a = await trainer.gradientFor(b.source.subarray(0, 5), b.target.subarray(0, 5), 0, seed),
    c = await trainer.gradientFor(b.source.subarray(5), b.target.subarray(5), 0, seed);
  const n = b.source.length;
  let diff = 0,
    scale = 0;
  for (let i = 0; i < whole.length; i++) {
    diff = Math.max(diff, Math.abs((5 * a.gradient[i] + (n - 5) * c.gradient[i]) / n - whole[i]));
    scale = Math.max(scale, Math.abs(whole[i]));
  }
  assert.ok(diff / scale < 1e-5, `relative difference ${diff / scale}`);
  trainer.dispose();
});

test('target entropy: adds β x the mean entropy of the target predictions (finite differences on the label head)', async () => {
  const arch = toyWithoutDropout();
  const weights = DannNetwork.initialWeights(arch, 6);
  const net = new DannNetwork(arch, weights);
  const src = toyDomain(5, 1, 'source'),
    tgt = toyDomain(7, 2, 'target');
  const source = preprocessBatch(src, [0, 1, 2, 3, 4]),
    target = preprocessBatch(tgt, [0, 1, 2, 3, 4, 5, 6]);
  const sourceLabels = Uint8Array.from([0, 1, 2, 3, 4], (i) => src.labels[i]);
  const beta = 0.7;
  const step = async (targetEntropy: number) =>
    (
      await computeGradient(
        net,
        { source, target, sourceLabels },
        { objectives: objectivesOf({ method: 'dann', domainWeight: 1, targetEntropy }), lambda: 0.5, seed: 1 },
      )
    ).gradient;
  const plain = await step(0),
    withEntropy = await step(beta);
  const entropy = (w: Float32Array) => {
    net.setWeights(w);
    return tf.tidy(() => {
      const p = tf.softmax(
        net.labelLogits(net.features(tf.tensor4d(target, [7, 32, 32, 3]), { training: false }), { training: false }),
      );
      return tf.neg(tf.mean(tf.sum(tf.mul(p, tf.log(p)), 1))).dataSync()[0];
    });
  };
  const label = net.specs.filter((s) => s.group === 'label');
  const domain = net.specs.filter((s) => s.group === 'domain');
  // The domain head does not see the entropy term.
  for (let i = domain[0].offset; i < net.size; i++)
    assert.ok(Math.abs(withEntropy[i] - plain[i]) <= 1e-6 * Math.max(1, Math.abs(plain[i])));
  const from = label[0].offset,
    to = label.at(-1)!.offset + label.at(-1)!.size;
  const added = [...Array(to - from).keys()]
    .map((k) => from + k)
    .sort((a, b) => Math.abs(withEntropy[b] - plain[b]) - Math.abs(withEntropy[a] - plain[a]))
    .slice(0, 6);
  const eps = 1e-2;
  for (const i of added) {
    const plus = Float32Array.from(weights),
      minus = Float32Array.from(weights);
    plus[i] += eps;
    minus[i] -= eps;
    const numeric = (beta * (entropy(plus) - entropy(minus))) / (2 * eps);
    const got = withEntropy[i] - plain[i];
    assert.ok(
      Math.abs(numeric - got) < 0.03 * Math.abs(got) + 1e-4,
      `parameter ${i}: finite difference ${numeric}, gradient ${got}`,
    );
  }
  net.dispose();
});

test("a step's gradient is the sum of its terms' gradients; a source-only step with a target term reads the target", async () => {
  const arch = toyWithoutDropout();
  const net = new DannNetwork(arch, DannNetwork.initialWeights(arch, 4));
  const src = toyDomain(6, 1, 'source'),
    tgt = toyDomain(6, 2, 'target');
  const idx = [0, 1, 2, 3, 4, 5];
  const batch = {
    source: preprocessBatch(src, idx),
    target: preprocessBatch(tgt, idx),
    sourceLabels: Uint8Array.from(idx, (i) => src.labels[i]),
  };
  const g = (...objectives: Parameters<typeof computeGradient>[2]['objectives']) =>
    computeGradient(net, batch, { objectives, lambda: 0.3, seed: 2 });
  const label = await g(labelCrossEntropy),
    domain = await g(domainAdversarial(0.8)),
    entropy = await g(targetEntropy(0.5)),
    all = await g(labelCrossEntropy, domainAdversarial(0.8), targetEntropy(0.5));
  for (let i = 0; i < net.size; i++) {
    const sum = label.gradient[i] + domain.gradient[i] + entropy.gradient[i];
    assert.ok(Math.abs(all.gradient[i] - sum) <= 1e-5 * Math.max(1, Math.abs(sum)), `parameter ${i}`);
  }
  // Each term reports its own figures; the others stay NaN.
  assert.ok(Number.isFinite(label.labelLoss) && Number.isNaN(label.domainLoss));
  assert.ok(Number.isFinite(domain.domainAccuracy) && Number.isNaN(domain.labelLoss));
  // No domain term: the domain head gets no gradient.
  const domainStart = net.specs.find((s) => s.group === 'domain')!.offset;
  assert.ok(entropy.gradient.subarray(domainStart).every((v) => v === 0));
  await assert.rejects(
    computeGradient(net, { ...batch, target: undefined }, { objectives: [targetEntropy(1)], lambda: 0, seed: 1 }),
    /target-entropy needs a target batch/,
  );
  net.dispose();
});
