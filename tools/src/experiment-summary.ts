import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runMain } from '@dann/cli';
import type { RunResult } from './report.ts';
import { summarizeRuns, summaryMarkdown } from './summary.ts';

/** Mean and spread over seeds of evaluated runs (runs/NAME/results.json from tools:evaluate). */
runMain(() => {
  const runs = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  if (runs.length === 0)
    throw new Error(
      'name the evaluated run directories, e.g. runs/exp/synth-mnist-dann-1 runs/exp/synth-mnist-dann-2.',
    );
  const results = runs.map((r) => {
    const file = join(r, 'results.json');
    if (!existsSync(file)) throw new Error(`${r} has no results.json; run npx nx run tools:evaluate -- ${r} first.`);
    return JSON.parse(readFileSync(file, 'utf8')) as RunResult;
  });
  console.log(summaryMarkdown(summarizeRuns(results)));
});
