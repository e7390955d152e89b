import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, webgpuTestSkip } from '@dann/backend';
import { Trainer } from './trainer.ts';
import { PRESETS } from './architecture.ts';
import { toyConfig, toyDomain } from './testing/toy.ts';
import { dannGradientErrors } from './testing/parity.ts';

// Training on tfjs-backend-webgpu through dawn.node: on this machine and in CI, Mesa's software GPU.
const skip = await webgpuTestSkip();
if (skip) console.log(`# skipping the webgpu tests: ${skip}`);
else {
  const info = await selectBackend({ backend: 'webgpu', strictDevice: true });
  assert.equal(info.backend, 'webgpu');
}

test("the paper network's whole DANN gradient on webgpu matches the cpu backend", {
  skip,
  timeout: 300_000,
}, async () => {
  for (const { name, err } of await dannGradientErrors(PRESETS.paper, 'webgpu', 4))
    assert.ok(err <= 1e-4, `${name}: relative error ${err}`);
});

test('a short run on webgpu: the loss falls, and steps leak no tensors', { skip, timeout: 300_000 }, async () => {
  await tf.setBackend('webgpu');
  const trainer = new Trainer(
    toyConfig({ epochs: 8, method: 'source-only' }),
    toyDomain(64, 1, 'source'),
    toyDomain(64, 2, 'target'),
  );
  const losses: number[] = [];
  for (let i = 0; i < 2; i++) losses.push((await trainer.trainStep()).labelLoss);
  const before = tf.memory().numTensors;
  while (trainer.step < trainer.totalSteps) losses.push((await trainer.trainStep()).labelLoss);
  assert.equal(tf.memory().numTensors, before);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(mean(losses.slice(-4)) < 0.7 * mean(losses.slice(0, 4)), `losses ${losses.map((l) => l.toFixed(3))}`);
  trainer.dispose();
});
