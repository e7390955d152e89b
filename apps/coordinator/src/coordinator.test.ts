import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeCheckpoint, type TrainConfig } from '@dann/models';
import { Coordinator, type CoordinatorOptions } from './coordinator.ts';

const train: TrainConfig = {
  preset: 'seed', method: 'dann', epochs: 1, batchSize: 8, optimizer: { kind: 'adam', clipNorm: 5 }, lr: 0.001, lrSchedule: 'paper',
  lambdaMax: 1, lambdaGamma: 10, domainWeight: 1, seed: 1,
};

function options(out: string, lines: string[]): CoordinatorOptions {
  return {
    spec: { train, data: { source: 'synth', target: 'mnist', valCount: 0 }, checksumEvery: 10 }, counts: { source: 32, target: 32 }, minTrainers: 1,
    stepTimeoutMs: 1000, checkpointEvery: 50, checkpointSeconds: 60, aggregate: 'clipped-mean', clipFactor: 3, maxOutlierSteps: 3, resyncIntervalMs: 10_000,
    wireDtype: 'f32', out, resume: false, log: (l) => lines.push(l), onDone: () => {},
  };
}

test('a checkpoint that cannot be written is reported, retried, and never leaves a broken file; a resumed run gets its accounting back', async () => {
  const out = mkdtempSync(join(tmpdir(), 'dann-ckpt-'));
  const lines: string[] = [];
  mkdirSync(join(out, 'checkpoint.bin')); // a directory in its place: the rename fails
  const c = new Coordinator(options(out, lines));
  assert.match(lines.join('\n'), /could not write .*checkpoint\.bin at step 0 \((EISDIR|ENOTEMPTY|EEXIST)\); the previous checkpoint is intact; retrying in 2 s/);
  assert.deepEqual(readdirSync(out).filter((f) => f.includes('.tmp')), [], 'no temp file left behind');
  rmSync(join(out, 'checkpoint.bin'), { recursive: true });
  await new Promise((r) => setTimeout(r, 2300));
  const saved = decodeCheckpoint(readFileSync(join(out, 'checkpoint.bin')));
  assert.equal(saved.step, 0);
  assert.deepEqual(saved.weights, c.weights);
  // Accounting travels in the checkpoint.
  c.usage.set(0, Uint8Array.from({ length: 32 }, (_, i) => (i < 20 ? 1 : 0)));
  assert.equal(c.checkpoint(), true);
  const resumed = new Coordinator({ ...options(out, lines), resume: true });
  assert.deepEqual(resumed.epochsExactlyOnce(), { 0: { once: 20, never: 12, more: 0 } });
  rmSync(out, { recursive: true });
});
