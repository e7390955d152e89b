import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { createRng } from '@dann/data';
import { selectBackend } from '@dann/backend';
import { Trainer } from './trainer.ts';
import { DannNetwork } from './network.ts';
import { PRESETS } from './architecture.ts';
import { computeGradient } from './step.ts';
import { objectivesOf } from './objectives/index.ts';
import { toyConfig, toyDomain } from './testing/toy.ts';

// Training on wasm with the project's kernels (@dann/backend), against tfjs's cpu backend.
await selectBackend({ backend: 'wasm' });

const randomArray = (n: number, seed: number) => {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => rng.normal());
};

/** max |a - b| / (max |b| + tiny): relative to the reference's scale. */
function relErr(a: Float32Array, b: Float32Array): number {
  let diff = 0,
    scale = 1e-12;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

test('training steps on wasm leak no tensors and no memory after warm-up', { timeout: 60_000 }, async () => {
  await tf.setBackend('wasm');
  const trainer = new Trainer(toyConfig({ epochs: 2 }), toyDomain(64, 1, 'source'), toyDomain(64, 2, 'target'));
  trainer.trainStep();
  trainer.trainStep();
  const before = tf.memory();
  for (let i = 0; i < 5; i++) trainer.trainStep();
  const after = tf.memory();
  assert.equal(after.numTensors, before.numTensors);
  assert.equal(after.numBytes, before.numBytes);
  trainer.dispose();
});

test("the seed network's whole DANN gradient on wasm (project kernels) matches the cpu backend", {
  timeout: 120_000,
}, async () => {
  const arch = PRESETS.seed,
    batch = 1,
    per = 32 * 32 * 3;
  const rng = createRng(1);
  const data = {
    source: randomArray(batch * per, 1),
    target: randomArray(batch * per, 2),
    sourceLabels: Uint8Array.from({ length: batch }, () => rng.int(10)),
  };
  const weights = DannNetwork.initialWeights(arch, 1);
  const gradientOn = async (backend: string) => {
    await tf.setBackend(backend);
    const net = new DannNetwork(arch, weights);
    const { gradient } = computeGradient(net, data, {
      objectives: objectivesOf({ method: 'dann', domainWeight: 1 }),
      lambda: 0.5,
      seed: 7,
    });
    const specs = net.specs;
    net.dispose();
    return { gradient, specs };
  };
  const want = await gradientOn('cpu');
  const got = await gradientOn('wasm');
  for (const s of want.specs) {
    const err = relErr(
      got.gradient.subarray(s.offset, s.offset + s.size),
      want.gradient.subarray(s.offset, s.offset + s.size),
    );
    assert.ok(err <= 1e-4, `${s.name}: relative error ${err}`);
  }
});
