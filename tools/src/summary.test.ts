import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarizeRuns, summaryMarkdown } from './summary.ts';
import type { RunResult } from './report.ts';

const run = (name: string, target: number, source = 0.9): RunResult => ({
  run: name,
  network: 'seed',
  method: 'dann',
  pair: 'synth -> mnist',
  checkpoint: 'best.bin',
  step: 1,
  source: { count: 1, accuracy: source, loss: 0, perClass: [], confusion: [] },
  target: { count: 1, accuracy: target, loss: 0, perClass: [], confusion: [] },
});

test('runs group by name without the seed; mean and sample std over seeds', () => {
  const g = summarizeRuns([run('s-m-dann-1', 0.7), run('s-m-dann-2', 0.8), run('s-m-so-1', 0.6)]);
  assert.deepEqual(
    g.map((x) => [x.kind, x.seeds]),
    [
      ['s-m-dann', 2],
      ['s-m-so', 1],
    ],
  );
  assert.ok(Math.abs(g[0].target.mean - 0.75) < 1e-12);
  assert.ok(Math.abs(g[0].target.std - Math.sqrt(0.005)) < 1e-12);
  assert.equal(g[1].target.std, 0);
  assert.match(
    summaryMarkdown(g),
    /\| synth -> mnist \| s-m-dann \| 2 \| 0\.9000 ± 0\.0000 \| 0\.7500 ± 0\.0707 \| 0\.7000, 0\.8000 \|/,
  );
});
