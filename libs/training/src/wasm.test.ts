import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '@dann/backend';
import { Trainer } from './trainer.ts';
import { PRESETS } from './architecture.ts';
import { toyConfig, toyDomain } from './testing/toy.ts';
import { dannGradientErrors } from './testing/parity.ts';

// Training on wasm with the project's kernels (@dann/backend), against tfjs's cpu backend.
await selectBackend({ backend: 'wasm' });

test('training steps on wasm leak no tensors and no memory after warm-up', { timeout: 60_000 }, async () => {
  await tf.setBackend('wasm');
  const trainer = new Trainer(toyConfig({ epochs: 2 }), toyDomain(64, 1, 'source'), toyDomain(64, 2, 'target'));
  await trainer.trainStep();
  await trainer.trainStep();
  const before = tf.memory();
  for (let i = 0; i < 5; i++) await trainer.trainStep();
  const after = tf.memory();
  assert.equal(after.numTensors, before.numTensors);
  assert.equal(after.numBytes, before.numBytes);
  trainer.dispose();
});

test("the seed network's whole DANN gradient on wasm (project kernels) matches the cpu backend", {
  timeout: 120_000,
}, async () => {
  for (const { name, err } of await dannGradientErrors(PRESETS.seed, 'wasm', 1))
    assert.ok(err <= 1e-4, `${name}: relative error ${err}`);
});
