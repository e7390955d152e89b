import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRESETS, loadCheckpoint, paramSpecs } from '@dann/training';

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
        '--gpu',
        '99',
        '--out',
        out,
      ],
      { DANN_DATA_DIR: join(dir, 'data') },
    );
    assert.equal(r.status, 0, r.stderr + r.stdout);
    // No GPU 99 anywhere: one line says why, and what trains instead.
    assert.match(
      r.stdout,
      /^GPU 99 unavailable: no (hardware GPU adapter|GPU 99: the hardware adapters are .*)[^\n]*; backend: (wasm on cpu \(wasm XNNPACK|tensorflow on cpu)/m,
    );
    assert.match(
      r.stdout,
      /epoch 2\/2: source test \d\.\d{4}, target test \d\.\d{4}, source val loss \d\.\d{4} acc \d\.\d{4}/,
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
      assert.ok(Number.isFinite(s.labelLoss) && Number.isFinite(s.domainLoss) && s.samples === 16);
      assert.ok((s.lambda as number) >= 0 && (s.lambda as number) <= 1);
    }
    assert.equal(steps[0].lambda, 0);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.equal(config.run.train.method, 'dann');
    assert.equal(config.settings.limit, '80');
    assert.equal(config.settings['lambda-max'], '0.1', 'defaults are recorded too');
    assert.equal(config.data.sourceVal, 16);
    const last = loadCheckpoint(join(out, 'checkpoint.bin'));
    assert.equal(last.step, 8);
    assert.ok(existsSync(join(out, 'best.bin')));
    assert.ok(existsSync(join(out, 'model.onnx')) && existsSync(join(out, 'results.md')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a bad option is one line on stderr and exit code 1; --usage documents every option', { timeout: 60_000 }, () => {
  const bad = train(['--method', 'magic']);
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr.trim(), 'error: --method must be one of source-only, dann, shot, mean-teacher, got "magic".');
  const help = train(['--usage']);
  assert.equal(help.status, 0);
  for (const opt of ['--method', '--lambda-max', '--init-from', '--limit', '--backend', '--gpu', '--strict-device'])
    assert.ok(help.stdout.includes(opt), opt);
  assert.match(help.stdout, /--epochs <value>\s+passes over the source training set \(default: 5\)/);
});

test('a config file sets the run and flags override it; a bad setting names the file and the setting', {
  timeout: 60_000,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dann-config-'));
  try {
    const file = join(dir, 'run.json');
    writeFileSync(file, JSON.stringify({ method: 'source-only', 'lambda-max': 'lots' }));
    const bad = train(['--config', file]);
    assert.equal(bad.status, 1);
    assert.equal(bad.stderr.trim(), `error: ${file}: --lambda-max must be a non-negative number, got "lots".`);
    writeFileSync(file, JSON.stringify({ lamda: 1 }));
    assert.match(
      train(['--config', file]).stderr,
      /run\.json: "lamda" is not a run setting \(settings: source, target/,
    );
    writeFileSync(file, '{"epochs": 2,');
    assert.match(train(['--config', file]).stderr, /^error: the config file .*run\.json is not valid JSON/);
    assert.equal(
      train(['--config', join(dir, 'missing.json')]).stderr.trim(),
      `error: the config file ${join(dir, 'missing.json')} does not exist.`,
    );
    assert.equal(
      train(['--freeze', 'features']).stderr.trim(),
      'error: --freeze needs --init-from: freezing untrained layers makes no sense.',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a run from a config file warm-starts another whose frozen feature extractor stays as it was; its config.json reruns it', {
  timeout: 300_000,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dann-train-'));
  try {
    const env = { DANN_DATA_DIR: join(dir, 'data') };
    const file = join(dir, 'tiny.json');
    writeFileSync(
      file,
      JSON.stringify({
        limit: 48,
        'val-count': 16,
        'batch-size': 16,
        epochs: 1,
        'eval-limit': 16,
        method: 'source-only',
      }),
    );
    const so = join(dir, 'so');
    const first = train(['--config', file, '--backend', 'wasm', '--out', so], env);
    assert.equal(first.status, 0, first.stderr + first.stdout);
    const out = join(dir, 'shot');
    const r = train(
      [
        '--config',
        file,
        '--method',
        'dann',
        '--target-entropy',
        '0.1',
        '--init-from',
        so,
        '--freeze',
        'features',
        '--backend',
        'wasm',
        '--out',
        out,
      ],
      env,
    );
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /warm start from .*best\.bin \(step 3\): feature extractor and label head/);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.equal(config.settings.limit, 48, 'from the file');
    assert.equal(config.settings.method, 'dann', 'the flag over the file');
    assert.equal(config.run.train.targetEntropy, 0.1);
    assert.deepEqual(config.run.train.frozen, ['features']);
    const before = loadCheckpoint(join(so, 'best.bin'));
    const after = loadCheckpoint(join(out, 'checkpoint.bin'));
    const features = paramSpecs(PRESETS.paper).filter((s) => s.group === 'features');
    const end = features.at(-1)!.offset + features.at(-1)!.size;
    assert.deepEqual(after.weights.subarray(0, end), before.weights.subarray(0, end), 'frozen features unchanged');
    assert.notDeepEqual(after.weights.subarray(end), before.weights.subarray(end), 'the label head trained');
    // config.json is a config file: the same run again gives the same weights.
    const again = train(['--config', join(out, 'config.json'), '--backend', 'wasm', '--out', join(dir, 'again')], env);
    assert.equal(again.status, 0, again.stderr + again.stdout);
    assert.deepEqual(loadCheckpoint(join(dir, 'again', 'checkpoint.bin')).weights, after.weights);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
