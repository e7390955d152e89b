import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '@dann/backend';
import { loadCheckpoint, resolveRun, Trainer, type TrainConfig } from '@dann/training';
import { runLocal } from './local.ts';
import { loadRunData } from './run-data.ts';

test('a one-process run is the distributed engine with one trainer: the weights a plain Trainer loop reaches, and every run file', {
  timeout: 180_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dann-local-'));
  try {
    await selectBackend({ backend: 'wasm' });
    const dataDir = join(dir, 'data');
    const { settings, config: run } = resolveRun({
      limit: 50,
      'val-count': 10,
      'batch-size': 16,
      epochs: 2,
      'eval-limit': 20,
      'target-entropy': 0.1,
    });
    const out = join(dir, 'run');
    const backend = { backend: 'wasm', device: 'cpu' };
    const lines: string[] = [];
    const c = await runLocal({
      run,
      settings,
      out,
      resume: false,
      dataDir,
      backend,
      log: (l) => lines.push(l),
    });
    assert.equal(c.step, 6); // 40 training images in batches of 16: 3 steps per epoch
    const data = loadRunData(run.data, { dataDir });
    const plain = new Trainer(run.train, data.sourceTrain, data.targetTrain);
    while (!plain.done) await plain.trainStep();
    assert.deepEqual(loadCheckpoint<TrainConfig>(join(out, 'checkpoint.bin')).weights, plain.weights);
    plain.dispose();
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      metrics.map((m) => `${m.type}${m.step}`),
      ['step0', 'step1', 'step2', 'epoch3', 'step3', 'step4', 'step5', 'epoch6'],
    );
    assert.ok(metrics.filter((m) => m.type === 'epoch').every((m) => m.targetTestAcc >= 0 && m.sourceValLoss > 0));
    for (const f of ['config.json', 'best.bin', 'results.md', 'model.onnx', 'model.json'])
      assert.ok(existsSync(join(out, f)), f);
    assert.match(lines.join('\n'), /epoch 2\/2: source test \d\.\d{4}, target test \d\.\d{4}/);
    // shot from this run: its best.bin is its last epoch (its adaptation raises the source-validation loss).
    const shot = resolveRun({ ...settings, method: 'shot', 'init-from': out, epochs: 2, lr: 0.0003 });
    const shotOut = join(dir, 'shot');
    await runLocal({ ...shot, run: shot.config, out: shotOut, resume: false, dataDir, backend, log: () => {} });
    assert.deepEqual(
      loadCheckpoint<TrainConfig>(join(shotOut, 'best.bin')).weights,
      loadCheckpoint<TrainConfig>(join(shotOut, 'checkpoint.bin')).weights,
    );
    // mean-teacher: its weight average travels in the replica's state and its checkpoint; the plain loop agrees.
    const mt = resolveRun({ ...settings, method: 'mean-teacher', augment: 'affine', confidence: 0.3 });
    const mtOut = join(dir, 'mt');
    await runLocal({ ...mt, run: mt.config, out: mtOut, resume: false, dataDir, backend, log: () => {} });
    const mtPlain = new Trainer(mt.config.train, data.sourceTrain, data.targetTrain);
    while (!mtPlain.done) await mtPlain.trainStep();
    const mtCheckpoint = loadCheckpoint<TrainConfig>(join(mtOut, 'checkpoint.bin'));
    assert.deepEqual(mtCheckpoint.weights, mtPlain.weights);
    assert.deepEqual(mtCheckpoint.optimizer.state.ema, mtPlain.optimizer.ema);
    assert.notDeepEqual(mtPlain.optimizer.ema, mtPlain.weights);
    mtPlain.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
