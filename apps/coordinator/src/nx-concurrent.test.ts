/**
 * Several `nx run trainer:start` from one checkout at once, as the README tells users to start one trainer
 * per GPU. Nx 24 lets only one process per checkout run a given *continuous* task (the others print
 * "Waiting for trainer:start in another nx process"), so trainer:start must not be continuous: this runs
 * a real coordinator and real `nx run` processes, the way a user types them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { coordinator, exitWithin, type Proc, ROOT, run, stop, TOKEN } from './testing/processes.ts';

const NX = join(ROOT, 'node_modules/.bin/nx');

// An nx run inside this test's own nx task must not write into that task's terminal-output file.
const nxEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^NX_(TASK_|TERMINAL_|STREAM_OUTPUT|PREFIX_OUTPUT)/.test(k)),
);

/** `nx run trainer:start [before] -- after`, in its own process group (nx runs the command in yet another one and forwards signals). */
const nxStart = (before: string[], after: string[]) =>
  run(NX, ['run', 'trainer:start', ...before, '--', ...after], { env: nxEnv, detached: true });

test('two `nx run trainer:start` from one checkout join one coordinator at once and finish its run; --gpu before -- reaches the program', {
  timeout: 120_000,
}, async () => {
  const out = mkdtempSync(join(tmpdir(), 'dann-nx-concurrent-'));
  const procs: Proc[] = [];
  try {
    const c = coordinator(out, ['--epochs', '1', '--min-trainers', '2']);
    procs.push(c);
    const url = await c.url();
    const common = ['--coordinator', url, '--token', TOKEN, '--backend', 'wasm'];
    const a = nxStart(['--gpu', '0'], [...common, '--name', 'a']);
    const b = nxStart(['--gpu', '1'], [...common, '--name', 'b']);
    // A third one at the same time, whose --gpu (given to nx, before the `--`) the program must see and refuse.
    const x = nxStart(['--gpu', 'x'], [...common, '--name', 'x']);
    procs.push(a, b, x);

    assert.equal(await exitWithin(x, 'the trainer given --gpu x', 45_000), 1, x.output);
    assert.match(x.output, /--gpu must be a GPU index \(0, 1, \.\.\.\), got "x"/);
    assert.equal(await exitWithin(c, 'the coordinator', 60_000), 0, c.output);
    // Both joined, each under its --name.
    const joined = c.output.split('\n').filter((line) => /^trainer .* joined /.test(line));
    assert.equal(joined.length, 2, c.output);
    for (const name of ['a', 'b'])
      assert.ok(
        joined.some((line) => line.startsWith(`trainer ${name} joined`)),
        c.output,
      );
    assert.match(c.output, /\b2 connected/);
    assert.match(c.output, /finished 10 steps/);
    for (const t of [a, b]) {
      assert.equal(await exitWithin(t, 'a trainer', 15_000), 0, t.output);
      assert.doesNotMatch(t.output, /in another nx process/);
      assert.match(t.output, /coordinator: the run is finished/);
    }
  } finally {
    for (const p of procs) await stop(p);
    rmSync(out, { recursive: true, force: true });
  }
});
