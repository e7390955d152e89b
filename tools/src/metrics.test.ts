import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readMetrics, smooth } from './metrics.ts';

test('smooth is an exponential moving average starting at the first value', () => {
  assert.deepEqual(
    smooth(
      [
        [0, 10],
        [1, 20],
        [2, 20],
      ],
      0.5,
    ),
    [
      [0, 10],
      [1, 15],
      [2, 17.5],
    ],
  );
});

test('readMetrics splits step and epoch lines and names a corrupt line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'metrics-'));
  const file = join(dir, 'metrics.jsonl');
  writeFileSync(
    file,
    '{"type":"step","step":0,"labelLoss":2.3,"domainLoss":null,"lambda":0}\n{"type":"epoch","epoch":1,"sourceValAcc":0.5,"sourceTestAcc":0.5,"targetTestAcc":0.4}\n\n',
  );
  const m = readMetrics(file);
  assert.equal(m.steps.length, 1);
  assert.equal(m.epochs[0].targetTestAcc, 0.4);
  writeFileSync(file, '{"type":"step"}\n{oops\n');
  assert.throws(() => readMetrics(file), /line 2 is not JSON/);
  assert.throws(() => readMetrics(join(dir, 'none.jsonl')), /does not exist/);
});
