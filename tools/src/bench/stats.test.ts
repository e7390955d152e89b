import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSummary, markdownTable, replaceSection, summarize } from './stats.ts';
import { kernelSplit, trainRow } from './train.ts';
import type { TrainDevice, TrainMeasurement } from './train-worker.ts';

test('summaries: median of odd and even counts, min and max', () => {
  assert.deepEqual(summarize([5, 1, 3]), { median: 3, min: 1, max: 5, runs: 3 });
  assert.equal(summarize([4, 1, 3, 2]).median, 2.5);
  assert.equal(formatSummary(summarize([1, 2, 10])), '2.0 (1.0–10.0)');
  assert.throws(() => summarize([]), /no measurements/);
});

test('replaceSection swaps only the generated block, or appends it once', () => {
  const doc = '# B\n\nhand notes\n\n<!-- bench:begin -->\nold\n<!-- bench:end -->\n\nmore notes\n';
  const next = replaceSection(doc, 'bench', 'new figures');
  assert.equal(next, '# B\n\nhand notes\n\n<!-- bench:begin -->\nnew figures\n<!-- bench:end -->\n\nmore notes\n');
  const appended = replaceSection('# B\n', 'bench', 'x');
  assert.equal(appended, '# B\n\n<!-- bench:begin -->\nx\n<!-- bench:end -->\n');
  assert.equal(replaceSection(appended, 'bench', 'y').match(/bench:begin/g)!.length, 1);
});

const measurement = (device: TrainDevice, rates: number[], kernelMs: Record<string, number>): TrainMeasurement => ({
  preset: 'seed',
  batch: 64,
  method: 'dann',
  device,
  deviceName: device === 'webgpu' ? 'GPU Test' : 'cpu',
  samplesPerSec: rates,
  split: { prepare: 4, gradient: 800, apply: 20 },
  kernelMs,
  numTensorsStable: true,
  peakRssMB: 700.4,
});

test('a training row reports medians, ranges, run counts and the ratio of medians', () => {
  const c = {
    reference: measurement('reference', [19, 20, 18], { A: 100 }),
    project: measurement('project', [80, 76, 78], { A: 10, B: 5 }),
  };
  assert.deepEqual(trainRow(c), [
    'seed',
    '64',
    'dann',
    '19.0 (18.0–20.0) [3]',
    '78.0 (76.0–80.0) [3]',
    '4.11x',
    '700 / 700',
  ]);
  // With a webgpu measurement: its rate, and its ratio to the project's kernels.
  assert.deepEqual(trainRow({ ...c, webgpu: measurement('webgpu', [390, 400], {}) }).slice(7), [
    '395.0 (390.0–400.0) [2]',
    '5.06x',
  ]);
  const split = kernelSplit(c);
  assert.match(split, /\| A \| 100 \| 10 \|/);
  assert.match(split, /\| all kernels \| 100 \| 15 \|/);
  assert.equal(markdownTable(['a'], [['1']]), '| a |\n| --- |\n| 1 |');
});
