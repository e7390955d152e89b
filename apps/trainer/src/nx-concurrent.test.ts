/**
 * Several `nx run trainer:start` from one checkout at once, as the README tells users to start one trainer
 * per GPU. Nx 24 lets only one process per checkout run a given *continuous* task (the others print
 * "Waiting for trainer:start in another nx process"), so trainer:start must not be continuous: this runs
 * a real coordinator and real `nx run` processes, the way a user types them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const NX = join(ROOT, 'node_modules/.bin/nx');
const TOKEN = 'T';

interface Proc {
  readonly child: ChildProcess;
  readonly group: boolean;
  output: string;
  /** Settles once the process has exited and its output is read. */
  readonly exit: Promise<number | null>;
}

// An nx run inside this test's own nx task must not write into that task's terminal-output file.
const nxEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^NX_(TASK_|TERMINAL_|STREAM_OUTPUT|PREFIX_OUTPUT)/.test(k)),
);

function spawnProc(cmd: string, args: string[], detached: boolean): Proc {
  const child = spawn(cmd, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached,
    env: detached ? nxEnv : process.env,
  });
  const p: Proc = {
    child,
    group: detached,
    output: '',
    exit: new Promise((resolve) => child.on('close', (code) => resolve(code))),
  };
  child.stdout!.on('data', (d) => (p.output += d));
  child.stderr!.on('data', (d) => (p.output += d));
  return p;
}

/** `nx run trainer:start [before] -- after`, in its own process group (nx runs the command in yet another one and forwards signals). */
const nxStart = (before: string[], after: string[]) =>
  spawnProc(NX, ['run', 'trainer:start', ...before, '--', ...after], true);

async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The exit code, or an error (so that the cleanup below still runs) when the process is still running after `ms`. */
async function exitCode(p: Proc, what: string, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>(
    (_, reject) =>
      (timer = setTimeout(() => reject(new Error(`${what} still running after ${ms / 1000} s:\n${p.output}`)), ms)),
  );
  try {
    return await Promise.race([p.exit, late]);
  } finally {
    clearTimeout(timer);
  }
}

test('two `nx run trainer:start` from one checkout join one coordinator at once and finish its run; --gpu before -- reaches the program', {
  timeout: 120_000,
}, async () => {
  const out = mkdtempSync(join(tmpdir(), 'dann-nx-concurrent-'));
  const procs: Proc[] = [];
  try {
    const c = spawnProc(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'apps/coordinator/src/serve.ts'),
        '--method',
        'dann',
        '--source',
        'synth',
        '--target',
        'mnist',
        '--preset',
        'paper',
        '--limit',
        '200',
        '--val-count',
        '40',
        '--batch-size',
        '16',
        '--epochs',
        '1',
        '--eval-limit',
        '50',
        '--port',
        '0',
        '--token',
        TOKEN,
        '--out',
        out,
        '--min-trainers',
        '2',
      ],
      false,
    );
    procs.push(c);
    const file = join(out, 'coordinator.json');
    const url = await until(
      'the coordinator to listen',
      () =>
        existsSync(file) &&
        c.output.includes('listening') &&
        (JSON.parse(readFileSync(file, 'utf8')) as { url: string }).url,
    );
    const common = ['--coordinator', url, '--token', TOKEN, '--backend', 'wasm'];
    const a = nxStart(['--gpu', '0'], [...common, '--name', 'a']);
    const b = nxStart(['--gpu', '1'], [...common, '--name', 'b']);
    // A third one at the same time, whose --gpu (given to nx, before the `--`) the program must see and refuse.
    const x = nxStart(['--gpu', 'x'], [...common, '--name', 'x']);
    procs.push(a, b, x);

    assert.equal(await exitCode(x, 'the trainer given --gpu x', 45_000), 1, x.output);
    assert.match(x.output, /--gpu must be a GPU index \(0, 1, \.\.\.\), got "x"/);
    assert.equal(await exitCode(c, 'the coordinator', 60_000), 0, c.output);
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
      assert.equal(await exitCode(t, 'a trainer', 15_000), 0, t.output);
      assert.doesNotMatch(t.output, /in another nx process/);
      assert.match(t.output, /coordinator: the run is finished/);
    }
  } finally {
    for (const p of procs) {
      const signal = (sig: NodeJS.Signals) => {
        try {
          if (p.group) process.kill(-p.child.pid!, sig);
          else p.child.kill(sig);
        } catch {
          /* already gone */
        }
      };
      if (p.child.exitCode !== null || p.child.signalCode !== null) continue;
      signal('SIGTERM');
      await exitCode(p, 'a process sent SIGTERM', 10_000).catch(() => signal('SIGKILL'));
    }
    rmSync(out, { recursive: true, force: true });
  }
});
