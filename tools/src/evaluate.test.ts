import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDataset } from '@dann/data';
import { architectureOf, DannNetwork, evaluate, loadCheckpoint, resolveRun, type TrainConfig } from '@dann/training';
import { runLocal } from '@dann/engine';
import { selectBackend } from '@dann/backend';
import { confusionMarkdown, resultsTable } from './report.ts';

test('the results table and confusion matrix have the documented shape', () => {
  const confusion: number[][] = Array.from({ length: 10 }, (_, k) =>
    Array.from({ length: 10 }, (_, j) => (k === j ? 9 : j === 0 ? 1 : 0)),
  );
  confusion[0][0] = 10;
  const e = { count: 100, accuracy: 0.91, loss: 0.3, perClass: confusion.map((row, k) => row[k] / 10), confusion };
  const table = resultsTable([
    {
      run: 'r1',
      network: 'seed',
      method: 'dann',
      pair: 'synth -> mnist',
      checkpoint: 'best.bin',
      step: 5,
      source: e,
      target: { ...e, accuracy: 0.5 },
    },
  ]);
  assert.equal(table.split('\n')[2], '| r1 | seed | dann | synth -> mnist | 0.9100 | 0.5000 |');
  const md = confusionMarkdown('Target', e).split('\n');
  assert.equal(md.length, 2 + 2 + 10);
  assert.equal(md[4], '| **0** | 10 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 1.0000 |');
  assert.equal(md[5], '| **1** | 1 | 9 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0.9000 |');
});

test('tools:evaluate reports a trained run on its test sets and writes results.md', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dann-eval-'));
  try {
    const dataDir = join(dir, 'data');
    await selectBackend({ backend: 'wasm' });
    // A real tiny run: trainer:train's engine, one epoch of 2 steps.
    const run = join(dir, 'tiny-run');
    const { settings, config } = resolveRun({
      limit: 40,
      'val-count': 8,
      'batch-size': 16,
      epochs: 1,
      'eval-limit': 16,
    });
    mkdirSync(run);
    await runLocal({
      run: config,
      settings,
      out: run,
      resume: false,
      dataDir,
      backend: { backend: 'wasm', device: 'cpu' },
      log: () => {},
    });
    const last = loadCheckpoint<TrainConfig>(join(run, 'checkpoint.bin'));
    const net = new DannNetwork(architectureOf(last.config), last.weights);
    const expected = (await evaluate(net, loadDataset('mnist', 'test', { dataDir, limit: 40 }))).accuracy;
    net.dispose();

    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'evaluate.ts'), run, '--checkpoint', 'last', '--limit', '40'],
      { encoding: 'utf8', env: { ...process.env, DANN_DATA_DIR: dataDir }, timeout: 100_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.includes(`| tiny-run | paper | dann | synth -> mnist | `), r.stdout);
    const json = JSON.parse(readFileSync(join(run, 'results.json'), 'utf8'));
    assert.equal(json.target.accuracy, expected);
    assert.equal(json.target.count, 40);
    assert.equal(json.checkpoint, 'checkpoint.bin');
    const md = readFileSync(join(run, 'results.md'), 'utf8');
    assert.match(md, /### Target \(mnist\): accuracy \d\.\d{4} on 40 images/);
    const missing = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'evaluate.ts'), join(dir, 'nope')],
      { encoding: 'utf8' },
    );
    assert.equal(missing.status, 1);
    assert.match(
      missing.stderr.trim(),
      /^error: .*nope is not a run directory \(no config\.json\); train one with npx nx run trainer:train\.$/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
