import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { gradientReversal } from './grl.ts';
import { lambdaSchedule, lrSchedule, progress } from './schedules.ts';
import {
  PRESETS,
  greyInput,
  withDomainHead,
  domainAfter,
  conditionalDomain,
  paramSpecs,
  paramCount,
  type Architecture,
} from './architecture.ts';
import { applyUpdate, createOptimizerState, l2norm } from './optimizer.ts';
import { decodeCheckpoint, encodeCheckpoint } from './checkpoint.ts';
import { Trainer } from './trainer.ts';
import { selectBackend } from './backend.ts';
import { evaluate } from './evaluate.ts';
import { toyConfig, toyDomain } from './testing/toy.ts';
import { DannNetwork } from './network.ts';
import { computeGradient } from './step.ts';
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
  const s = createOptimizerState({ kind: 'sgd', momentum: 0.9 }, 2);
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

for (const method of ['source-only', 'dann'] as const) {
  test(`${method}: the loss falls on a learnable toy problem`, { timeout: 120_000 }, () => {
    const source = toyDomain(320, 1, 'source');
    const target = toyDomain(320, 2, 'target');
    const trainer = new Trainer(toyConfig({ method, epochs: 3 }), source, target);
    const losses: number[] = [];
    const domainAcc: number[] = [];
    while (!trainer.done) {
      const r = trainer.trainStep();
      losses.push(r.labelLoss);
      domainAcc.push(r.domainAccuracy);
    }
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    const first = mean(losses.slice(0, 5)),
      last = mean(losses.slice(-5));
    assert.ok(last < 0.5 * first, `label loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
    assert.ok(evaluate(trainer.net, toyDomain(200, 3, 'source')).accuracy > 0.5);
    assert.equal(domainAcc.every(Number.isNaN), method === 'source-only');
    trainer.dispose();
  });
}

test('save -> load -> continue takes exactly the steps of an uninterrupted run', { timeout: 60_000 }, () => {
  const source = toyDomain(96, 4, 'source');
  const target = toyDomain(64, 5, 'target');
  const config = toyConfig({ epochs: 2, optimizer: { kind: 'sgd', momentum: 0.9 }, lr: 0.02, lrSchedule: 'paper' });
  const straight = new Trainer(config, source, target);
  for (let i = 0; i < 9; i++) straight.trainStep();

  const first = new Trainer(config, source, target);
  for (let i = 0; i < 5; i++) first.trainStep(); // crosses into epoch 2 after step 6: resume mid-epoch 1
  const saved = encodeCheckpoint(first.checkpoint({ note: 'mid-run' }));
  first.dispose();
  const resumed = Trainer.fromCheckpoint(decodeCheckpoint(saved), source, target);
  assert.equal(resumed.step, 5);
  for (let i = 0; i < 4; i++) resumed.trainStep();

  assert.deepEqual(resumed.weights, straight.weights);
  assert.deepEqual(resumed.optimizer.m, straight.optimizer.m);
  assert.deepEqual(resumed.net.getWeights(), straight.net.getWeights());
  straight.dispose();
  resumed.dispose();
});

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

test('training keeps tensor memory flat across steps', { timeout: 60_000 }, () => {
  const trainer = new Trainer(toyConfig({ epochs: 2 }), toyDomain(64, 1, 'source'), toyDomain(64, 2, 'target'));
  trainer.trainStep();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) trainer.trainStep();
  assert.equal(tf.memory().numTensors, before);
  trainer.dispose();
});

test('a GPU that cannot load is reported in one line and falls back; strict makes it an error', {
  timeout: 30_000,
}, async () => {
  const lines: string[] = [];
  const info = await selectBackend({ backend: 'auto', gpu: 1, log: (l) => lines.push(l) });
  assert.equal(process.env.CUDA_VISIBLE_DEVICES, '1');
  assert.match(
    info.fallbacks[0],
    /^GPU 1 unavailable: @tensorflow\/tfjs-node-gpu is not installed \(see the README, "GPU machines"\); falling back$/,
  );
  assert.ok(['tensorflow', 'wasm'].includes(info.backend));
  await assert.rejects(
    selectBackend({ backend: 'tensorflow-gpu', gpu: 0, strictDevice: true }),
    /cannot use the tensorflow-gpu backend: @tensorflow\/tfjs-node-gpu is not installed/,
  );
  await selectBackend({ backend: 'wasm' });
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
      { method: 'dann', lambda: 0.7, seed: 11 },
    );
  const whole = part(all).gradient;
  const a = part(all.subarray(0, 5)),
    b = part(all.subarray(5));
  let diff = 0,
    scale = 0;
  for (let i = 0; i < whole.length; i++) {
    diff = Math.max(diff, Math.abs((5 * a.gradient[i] + 3 * b.gradient[i]) / 8 - whole[i]));
    scale = Math.max(scale, Math.abs(whole[i]));
  }
  assert.ok(diff / scale < 1e-5, `relative difference ${diff / scale}`);
  net.dispose();
});

test("flip / confusion: label and domain heads get the GRL gradients; the features get the adversarial loss's gradient", () => {
  const config = toyConfig();
  const arch = architectureOf(config);
  const net = new DannNetwork(arch, DannNetwork.initialWeights(arch, 3));
  const src = toyDomain(8, 1, 'source'),
    tgt = toyDomain(8, 2, 'target');
  const idx = Uint32Array.from({ length: 8 }, (_, i) => i);
  const batch = {
    source: preprocessBatch(src, idx),
    target: preprocessBatch(tgt, idx),
    sourceLabels: Uint8Array.from(idx, (i) => src.labels[i]),
    ids: { source: idx, target: idx },
  };
  const g = (adversarial: 'grl' | 'flip' | 'confusion', lambda: number) =>
    computeGradient(net, batch, { method: 'dann', lambda, adversarial, domainWeight: 0.8, seed: 11 }).gradient;
  const grl = g('grl', 0.7),
    flip = g('flip', 0.7),
    confusion = g('confusion', 0.7),
    labelOnly = g('grl', 0);
  const features = net.specs.filter((s) => s.group === 'features');
  const featureEnd = features.at(-1)!.offset + features.at(-1)!.size;
  const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>, from: number, to: number) => {
    let d = 0,
      s = 0;
    for (let i = from; i < to; i++) {
      d = Math.max(d, Math.abs(a[i] - b[i]));
      s = Math.max(s, Math.abs(b[i]));
    }
    return d / s;
  };
  // Heads: identical to GRL's (the head sees the domain loss only; the label path is untouched).
  assert.ok(maxDiff(flip, grl, featureEnd, net.size) < 1e-5);
  assert.ok(maxDiff(confusion, grl, featureEnd, net.size) < 1e-5);
  // Features differ from GRL's, and per logit gradient p - 1/2 = ((p - y) + (p - (1 - y))) / 2:
  // confusion = labelOnly + (flip - grl) / 2.
  assert.ok(maxDiff(flip, grl, 0, featureEnd) > 0.01);
  const expected = Float32Array.from(labelOnly, (v, i) => v + (flip[i] - grl[i]) / 2);
  assert.ok(
    maxDiff(confusion, expected, 0, featureEnd) < 1e-4,
    `confusion vs (flip - grl) / 2: ${maxDiff(confusion, expected, 0, featureEnd)}`,
  );
  net.dispose();
});

test('flip: the feature gradient matches finite differences of label loss + λ w x CE(flipped domain labels) with the head fixed', () => {
  const arch = toyWithoutDropout();
  const weights = DannNetwork.initialWeights(arch, 4);
  const net = new DannNetwork(arch, weights);
  const src = toyDomain(6, 1, 'source'),
    tgt = toyDomain(6, 2, 'target');
  const idx = Uint32Array.from({ length: 6 }, (_, i) => i);
  const source = preprocessBatch(src, idx),
    target = preprocessBatch(tgt, idx),
    sourceLabels = Uint8Array.from(idx, (i) => src.labels[i]);
  const lambda = 0.6,
    domainWeight = 0.5;
  const grad = computeGradient(
    net,
    { source, target, sourceLabels },
    { method: 'dann', lambda, domainWeight, adversarial: 'flip', seed: 1 },
  ).gradient;
  const objective = (w: Float32Array) => {
    net.setWeights(w);
    return tf.tidy(() => {
      const fo = { training: false };
      const f = net.features(tf.concat([tf.tensor4d(source, [6, 32, 32, 3]), tf.tensor4d(target, [6, 32, 32, 3])]), fo);
      const labelLoss = tf.losses.softmaxCrossEntropy(
        tf.oneHot(tf.tensor1d(sourceLabels, 'int32'), 10),
        net.labelLogits(tf.slice(f, [0, 0], [6, -1]), fo),
      );
      const flipped = tf.tensor2d([...Array(6).fill([0, 1]), ...Array(6).fill([1, 0])]);
      const fool = tf.losses.softmaxCrossEntropy(flipped, net.domainHead(f, fo));
      return tf.add(labelLoss, tf.mul(fool, lambda * domainWeight)).dataSync()[0];
    });
  };
  const featureSize = net.specs.filter((s) => s.group === 'features').reduce((a, s) => a + s.size, 0);
  const largest = [...grad.subarray(0, featureSize).keys()]
    .sort((a, b) => Math.abs(grad[b]) - Math.abs(grad[a]))
    .slice(0, 6);
  const eps = 1e-2;
  for (const i of largest) {
    const plus = Float32Array.from(weights),
      minus = Float32Array.from(weights);
    plus[i] += eps;
    minus[i] -= eps;
    const numeric = (objective(plus) - objective(minus)) / (2 * eps);
    assert.ok(
      Math.abs(numeric - grad[i]) < 0.03 * Math.abs(grad[i]) + 1e-4,
      `parameter ${i}: finite difference ${numeric}, gradient ${grad[i]}`,
    );
  }
  net.dispose();
});

test('grey input: the network sees the preprocessed luminance image in every channel', async () => {
  const { preprocessImage } = await import('@dann/data');
  const { greyImages } = await import('./network.ts');
  const rgb = toyDomain(3, 7, 'target'); // coloured 32x32x3
  const x = preprocessBatch(rgb, [0, 1, 2]);
  const got = greyImages(tf.tensor4d(x, [3, 32, 32, 3]));
  const grey = got.dataSync();
  for (let i = 0; i < 3; i++) {
    const src = rgb.images.subarray(i * 3072, (i + 1) * 3072);
    const lum = Uint8Array.from({ length: 1024 }, (_, p) =>
      Math.round(0.299 * src[3 * p] + 0.587 * src[3 * p + 1] + 0.114 * src[3 * p + 2]),
    );
    const want = new Float32Array(3072);
    preprocessImage(lum, 32, 32, 1, want);
    for (let j = 0; j < 3072; j++)
      assert.ok(
        Math.abs(grey[i * 3072 + j] - want[j]) < 0.05,
        `image ${i} value ${j}: ${grey[i * 3072 + j]} vs ${want[j]}`,
      );
  }
  got.dispose();
  // A grey image (R = G = B) is its own luminance.
  const g = toyDomain(2, 8, 'source');
  const xg = preprocessBatch(g, [0, 1]);
  const same = greyImages(tf.tensor4d(xg, [2, 32, 32, 3]));
  same.dataSync().forEach((v, j) => assert.ok(Math.abs(v - xg[j]) < 1e-4));
  same.dispose();
  const arch = greyInput(architectureOf(toyConfig()));
  assert.equal(arch.input.grey, true);
  assert.equal(paramSpecs(arch).length, paramSpecs(architectureOf(toyConfig())).length);
});

test('target entropy: adds β x the mean entropy of the target predictions (finite differences on the label head)', () => {
  const arch = toyWithoutDropout();
  const weights = DannNetwork.initialWeights(arch, 6);
  const net = new DannNetwork(arch, weights);
  const src = toyDomain(5, 1, 'source'),
    tgt = toyDomain(7, 2, 'target');
  const source = preprocessBatch(src, [0, 1, 2, 3, 4]),
    target = preprocessBatch(tgt, [0, 1, 2, 3, 4, 5, 6]);
  const sourceLabels = Uint8Array.from([0, 1, 2, 3, 4], (i) => src.labels[i]);
  const beta = 0.7;
  const step = (targetEntropy: number) =>
    computeGradient(net, { source, target, sourceLabels }, { method: 'dann', lambda: 0.5, targetEntropy, seed: 1 })
      .gradient;
  const plain = step(0),
    withEntropy = step(beta);
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

test('another domain head keeps the label path and its layout; a linear head reads the features directly', () => {
  const paper = paramSpecs(PRESETS.paper);
  const labelPath = (specs: typeof paper) => specs.filter((s) => s.group !== 'domain');
  const big = paramSpecs(withDomainHead(PRESETS.paper, [1024, 1024], 0.5));
  assert.deepEqual(labelPath(big), labelPath(paper));
  assert.equal(paramCount(big, ['domain']), 3072 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 2 + 2);
  assert.deepEqual(
    withDomainHead(PRESETS.paper, [1024, 1024], 0.5).domain.map((l) => l.kind),
    ['dense', 'dropout', 'dense', 'dropout', 'dense'],
  );
  assert.equal(paramCount(paramSpecs(withDomainHead(PRESETS.paper, [])), ['domain']), 3072 * 2 + 2);
  assert.throws(() => withDomainHead(PRESETS.paper, [0]), /positive integers/);
  assert.throws(() => withDomainHead(PRESETS.paper, [8], 1), /dropout must be in \[0, 1\)/);
});

test('the domain head moved down the label path reads the hidden layer; the label path predicts the same with the same weights', () => {
  const paper: Architecture = PRESETS.paper,
    deep = domainAfter(paper, 1);
  const labelPath = (arch: Architecture) => paramSpecs(arch).filter((s) => s.group !== 'domain');
  assert.deepEqual(
    labelPath(deep).map((s) => s.shape),
    labelPath(paper).map((s) => s.shape),
  );
  assert.deepEqual(paramSpecs(deep).filter((s) => s.group === 'domain')[0].shape, [100, 100]);
  assert.equal(domainAfter(paper, 0), paper);
  assert.throws(() => domainAfter(paper, 3), /after 0\.\.2 of its layers, got 3/);
  const weights = DannNetwork.initialWeights(paper, 3);
  const moved = new Float32Array(paramCount(paramSpecs(deep)));
  const labelSize = labelPath(paper).reduce((n, s) => n + s.size, 0);
  moved.set(weights.subarray(0, labelSize)); // the label path comes first in both layouts
  const images = preprocessBatch(toyDomain(4, 5, 'source'), [0, 1, 2, 3]);
  const a = new DannNetwork(paper, weights),
    b = new DannNetwork(deep, moved);
  const pa = a.predict(images),
    pb = b.predict(images);
  pa.forEach((v, i) => assert.ok(Math.abs(v - pb[i]) < 1e-6, `probability ${i}: ${v} vs ${pb[i]}`));
  a.dispose();
  b.dispose();
});

test('a conditional (CDAN) domain head reads features ⊗ class probabilities, held constant: no domain gradient reaches the label head', () => {
  const plain = toyWithoutDropout();
  const arch = conditionalDomain(plain);
  const d = paramSpecs(plain).find((s) => s.group === 'domain' && s.kind === 'kernel')!.shape[0];
  assert.equal(paramSpecs(arch).find((s) => s.group === 'domain' && s.kind === 'kernel')!.shape[0], d * 10);
  const net = new DannNetwork(arch, DannNetwork.initialWeights(arch, 4));
  const src = toyDomain(6, 1, 'source'),
    tgt = toyDomain(6, 2, 'target');
  const batch = {
    source: preprocessBatch(src, [0, 1, 2, 3, 4, 5]),
    target: preprocessBatch(tgt, [0, 1, 2, 3, 4, 5]),
    sourceLabels: src.labels.subarray(0, 6),
  };
  // The class probabilities enter as constants: the label head's gradient is exactly source-only's, while
  // the features get the reversed domain gradient and the head learns.
  const dann = computeGradient(net, batch, { method: 'dann', lambda: 1, seed: 1 });
  const so = computeGradient(net, batch, { method: 'source-only', lambda: 0, seed: 1 });
  const label = net.specs.filter((s) => s.group === 'label');
  const from = label[0].offset,
    to = label.at(-1)!.offset + label.at(-1)!.size;
  for (let i = from; i < to; i++)
    assert.ok(
      Math.abs(dann.gradient[i] - so.gradient[i]) <= 1e-5 * Math.max(1, Math.abs(so.gradient[i])),
      `label parameter ${i}: ${dann.gradient[i]} vs ${so.gradient[i]}`,
    );
  const diff = so.gradient.subarray(0, from).map((g, i) => dann.gradient[i] - g);
  assert.ok(l2norm(diff) > 1e-4 * l2norm(so.gradient.subarray(0, from)), 'the features get the domain gradient');
  assert.ok(l2norm(dann.gradient.subarray(to)) > 0, 'the domain head learns');
  net.dispose();
});
