import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRESETS, loadCheckpoint } from '@dann/models';

const script = join(import.meta.dirname, 'train.ts');

function train(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ['--import', 'tsx', script, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 170_000,
  });
}

test('trains a tiny DANN run end to end and writes the run directory', { timeout: 180_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dann-train-'));
  try {
    const out = join(dir, 'run');
    const r = train(
      [
        '--method',
        'dann',
        '--preset',
        'paper',
        '--limit',
        '80',
        '--val-count',
        '16',
        '--batch-size',
        '16',
        '--epochs',
        '2',
        '--eval-limit',
        '32',
        '--backend',
        'wasm',
        '--out',
        out,
      ],
      { DANN_DATA_DIR: join(dir, 'data') },
    );
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /backend: wasm on cpu \(wasm XNNPACK/);
    assert.match(
      r.stdout,
      /epoch 2\/2: source val loss \d\.\d{4} acc \d\.\d{4}, source test \d\.\d{4}, target test \d\.\d{4}/,
    );
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number | string | boolean>);
    const steps = lines.filter((l) => l.type === 'step');
    const epochs = lines.filter((l) => l.type === 'epoch');
    assert.equal(steps.length, 8); // 64 training images / 16 per step x 2 epochs
    assert.equal(epochs.length, 2);
    for (const s of steps) {
      assert.ok(Number.isFinite(s.labelLoss) && Number.isFinite(s.domainLoss) && Number.isFinite(s.samplesPerSec));
      assert.ok((s.lambda as number) >= 0 && (s.lambda as number) <= 1);
    }
    assert.equal(steps[0].lambda, 0);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.equal(config.train.method, 'dann');
    assert.equal(config.data.sourceVal, 16);
    const last = loadCheckpoint(join(out, 'checkpoint.bin'));
    assert.equal(last.step, 8);
    assert.ok(existsSync(join(out, 'best.bin')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a bad option is one line on stderr and exit code 1; --usage documents every option', { timeout: 60_000 }, () => {
  const bad = train(['--method', 'magic']);
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr.trim(), 'error: --method must be one of source-only, dann, got "magic".');
  const help = train(['--usage']);
  assert.equal(help.status, 0);
  for (const opt of ['--method', '--lambda-max', '--init-from', '--limit', '--backend', '--gpu', '--strict-device'])
    assert.ok(help.stdout.includes(opt), opt);
  assert.match(help.stdout, /--epochs <value>\s+passes over the source training set \(default: 5\)/);
});

test('grey input, another or a conditional domain head, a non-saturating adversarial loss and target entropy are recorded in the run; a warm start keeps working', {
  timeout: 300_000,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dann-train-'));
  try {
    const common = [
      '--preset',
      'paper',
      '--limit',
      '48',
      '--val-count',
      '16',
      '--batch-size',
      '16',
      '--epochs',
      '1',
      '--eval-limit',
      '16',
      '--backend',
      'wasm',
    ];
    const env = { DANN_DATA_DIR: join(dir, 'data') };
    const first = train(['--method', 'source-only', ...common, '--out', join(dir, 'so')], env);
    assert.equal(first.status, 0, first.stderr + first.stdout);
    const out = join(dir, 'grey');
    const r = train(
      [
        '--method',
        'dann',
        '--grey',
        '--adversarial',
        'confusion',
        '--target-entropy',
        '0.1',
        '--domain-head',
        '64,32',
        '--domain-dropout',
        '0.5',
        '--init-from',
        join(dir, 'so'),
        ...common,
        '--out',
        out,
      ],
      env,
    );
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /warm start from .*: feature extractor and label head/);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.equal(config.train.adversarial, 'confusion');
    assert.equal(config.train.targetEntropy, 0.1);
    assert.equal(config.train.architecture.input.grey, true);
    assert.deepEqual(
      config.train.architecture.domain.map((l: { kind: string; units?: number; rate?: number }) => l.units ?? l.rate),
      [64, 0.5, 32, 0.5, 2],
    );
    assert.equal(loadCheckpoint(join(out, 'checkpoint.bin')).arch, 'paper-grey-domain64-32-d0.5');
    // The domain head on the label path's first hidden layer, conditioned on the class probabilities (CDAN):
    // the same label path, warm-started by position.
    const deep = train(
      [
        '--method',
        'dann',
        '--domain-after',
        '1',
        '--conditional',
        '--init-from',
        join(dir, 'so'),
        ...common,
        '--out',
        join(dir, 'deep'),
      ],
      env,
    );
    assert.equal(deep.status, 0, deep.stderr + deep.stdout);
    assert.match(
      deep.stdout,
      /warm start from .*: feature extractor and label head \(by position: paper -> paper-grl1-cdan\)/,
    );
    const deepConfig = JSON.parse(readFileSync(join(dir, 'deep', 'config.json'), 'utf8'));
    assert.equal(deepConfig.train.architecture.features.length, PRESETS.paper.features.length + 1);
    assert.equal(deepConfig.train.architecture.conditional, true);
    assert.equal(loadCheckpoint(join(dir, 'deep', 'checkpoint.bin')).arch, 'paper-grl1-cdan');
    const noHead = train(['--method', 'dann', '--domain-dropout', '0.5', ...common, '--out', join(dir, 'x')], env);
    assert.equal(
      noHead.stderr.trim(),
      "error: --domain-dropout needs --domain-head (the presets' heads have no dropout layers).",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
