#!/usr/bin/env node
// Runs one project's tests with Node's built-in runner through tsx.
// Node 20 has no test-file globs and passes silently on zero files, so this
// script finds the files itself and refuses to pass a project that has code but no tests; first it
// checks the project's module boundaries (boundaries.mjs).
import { spawnSync } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { boundaryViolations } from './boundaries.mjs';

const root = resolve(import.meta.dirname, '..');
if (process.argv[2]) process.chdir(resolve(root, process.argv[2]));

function walk(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

const sources = walk('src').filter((f) => f.endsWith('.ts'));
const tests = sources.filter((f) => f.endsWith('.test.ts')).sort();
const project = relative(root, process.cwd()) || '.';
if (tests.length === 0) {
  if (sources.length > 0) {
    console.error(`${project}: has ${sources.length} source files but no *.test.ts; add tests.`);
    process.exit(1);
  }
  console.log(`${project}: no source files yet, so no tests to run.`);
  process.exit(0);
}
const problems = boundaryViolations(root, process.cwd());
if (problems.length > 0) {
  for (const p of problems) console.error(`module boundary: ${p}`);
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=1', ...tests],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
