import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs';
import { RUN_OPTIONS, resolveRun, runFlags } from './run-config.ts';
import { infoMax, type Forward } from './objectives/index.ts';

test('a run is the defaults, then the config file, then the flags given; every setting is recorded', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dann-run-'));
  try {
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ epochs: 3, 'lambda-max': 0.5, source: 'usps' }));
    const { settings, config } = resolveRun({ config: file, epochs: '7' });
    assert.equal(config.train.epochs, 7, 'the flag over the file');
    assert.equal(config.train.lambdaMax, 0.5, 'the file over the default');
    assert.equal(config.data.source, 'usps');
    assert.equal(config.train.batchSize, 64, 'the default');
    assert.equal(settings['batch-size'], '64');
    assert.deepEqual(
      Object.keys(settings).sort(),
      Object.keys(RUN_OPTIONS)
        .filter((k) => !['config', 'limit', 'init-from', 'freeze'].includes(k))
        .sort(),
    );
    // Only options on the command line count as flags.
    assert.deepEqual(runFlags({ epochs: '7', lr: '0.001', config: file }, new Set(['epochs', 'config'])), {
      epochs: '7',
      config: file,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('shot adapts a trained model with its label head frozen; without one it is one sentence', () => {
  assert.throws(() => resolveRun({ method: 'shot' }), /^Error: --method shot adapts a trained model: pass --init-from/);
  const { config } = resolveRun({ method: 'shot', 'init-from': 'runs/so', 'info-max': '0.5', augment: 'affine' });
  assert.deepEqual(config.train.frozen, ['label']);
  assert.equal(config.train.infoMax, 0.5);
  assert.equal(config.train.augment, 'affine');
  assert.throws(() => resolveRun({ augment: 'lots' }), /--augment must be one of none, affine, got "lots"/);
});

test('information maximisation rewards confident and diverse target predictions, not a collapse onto one class', () => {
  const im = infoMax(1);
  const value = (logits: number[][]) =>
    tf.tidy(() => im.loss({ targetLogits: () => tf.tensor2d(logits) } as unknown as Forward).loss.dataSync()[0]);
  const one = (k: number) => Array.from({ length: 10 }, (_, j) => (j === k ? 20 : 0));
  const diverse = value([one(0), one(1), one(2), one(3)]);
  const collapsed = value([one(0), one(0), one(0), one(0)]);
  const unsure = value([Array(10).fill(0), Array(10).fill(0)]);
  assert.ok(Math.abs(diverse + Math.log(4)) < 1e-3, `${diverse}`); // entropy 0, diversity ln 4
  assert.ok(Math.abs(collapsed) < 1e-3, `${collapsed}`);
  assert.ok(Math.abs(unsure) < 1e-3, `${unsure}`); // entropy ln 10 = diversity ln 10
});
