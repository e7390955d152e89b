import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs';
import { RUN_OPTIONS, resolveRun, runFlags } from './run-config.ts';
import { classBalance, consistency, infoMax, type Forward } from './objectives/index.ts';

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
  assert.throws(
    () => resolveRun({ augment: 'lots' }),
    /--augment must be one of none, affine, strong, colour, got "lots"/,
  );
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

test('mean-teacher needs augmentation, keeps a weight average and takes its weights from the settings', () => {
  assert.throws(
    () => resolveRun({ method: 'mean-teacher' }),
    /^Error: --method mean-teacher compares two random changes of each target image: pass --augment affine/,
  );
  assert.throws(
    () => resolveRun({ method: 'mean-teacher', augment: 'affine', 'teacher-decay': '1' }),
    /--teacher-decay must be below 1, got 1\./,
  );
  const { config } = resolveRun({ method: 'mean-teacher', augment: 'strong', consistency: '2', confidence: '0.9' });
  assert.deepEqual(config.train.meanTeacher, { consistency: 2, confidence: 0.9, classBalance: 0.3 });
  assert.equal(config.train.optimizer.ema, 0.99);
  assert.equal(resolveRun({}).config.train.optimizer.ema, undefined, 'no weight average for other methods');
});

test("consistency: the squared distance to the teacher's confident predictions only; class balance: lowest when balanced", () => {
  const one = (k: number, p = 1) => Array.from({ length: 10 }, (_, j) => (j === k ? p : (1 - p) / 9));
  const logits = (probs: number[][]) => tf.log(tf.tensor2d(probs));
  const value = (term: ReturnType<typeof consistency>, student: number[][], teacher?: number[][]) =>
    tf.tidy(
      () =>
        term
          .loss({
            targetLogits: () => logits(student),
            teacherProbs: () => tf.tensor2d(teacher ?? student),
          } as unknown as Forward)
          .loss.dataSync()[0],
    );
  const c = consistency(2, 0.9);
  assert.ok(Math.abs(value(c, [one(0, 0.97)])) < 1e-6, 'no loss where student and teacher agree');
  // Row 1: teacher confident in class 1, the student in class 0: distance 2 x 0.95^2-ish; row 2: teacher unsure.
  const student = [one(0, 0.99), one(0, 0.99)];
  const teacher = [one(1, 0.99), one(1, 0.5)];
  let distance = 0;
  for (let k = 0; k < 10; k++) distance += (student[0][k] - teacher[0][k]) ** 2;
  const got = value(c, student, teacher);
  assert.ok(Math.abs(got - (2 * distance) / 2) < 1e-4, `${got} vs ${distance}: the unsure row adds nothing`);
  const b = classBalance(1);
  const balanced = value(b, [one(0), one(1), one(2), one(3), one(4), one(5), one(6), one(7), one(8), one(9)]);
  const collapsed = value(
    b,
    Array.from({ length: 10 }, () => one(3, 0.99)),
  );
  const h = -(0.1 * Math.log(0.1) + 0.9 * Math.log(0.9)); // BCE of 1/K against itself
  assert.ok(Math.abs(balanced - h) < 1e-3, `${balanced} vs ${h}`);
  assert.ok(collapsed > balanced + 0.2, `${collapsed}`);
});
