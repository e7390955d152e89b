/**
 * Real processes for the integration tests and the soak: spawn one with its output captured, wait for a
 * condition, stop it (with its process group), and the small coordinator run the tests share.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../..', import.meta.url));
export const SERVE = join(ROOT, 'apps/coordinator/src/serve.ts');
export const START = join(ROOT, 'apps/trainer/src/start.ts');
export const TRAIN = join(ROOT, 'apps/trainer/src/train.ts');
/** The token of the tests' coordinators. */
export const TOKEN = 'test-token';

export interface Proc {
  readonly child: ChildProcess;
  /** Started as the leader of its own process group (stop() signals the whole group). */
  readonly group: boolean;
  /** Everything it wrote to stdout and stderr so far. */
  output: string;
  /** Settles once the process has exited and its output is read. */
  readonly exit: Promise<number | null>;
}

export interface RunOptions {
  /** The whole environment (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
  /** Its own process group, for programs that start children of their own (nx). */
  readonly detached?: boolean;
  /** A command that runs the script, e.g. `ip netns exec NS` (runScript only). */
  readonly prefix?: readonly string[];
}

/** Runs `command args` in the workspace root. */
export function run(command: string, args: string[], options: RunOptions = {}): Proc {
  const detached = options.detached ?? false;
  const child = spawn(command, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
    detached,
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

/** A TypeScript entry point of the workspace, run by Node through tsx. */
export function runScript(script: string, args: string[], options: RunOptions = {}): Proc {
  const [command, ...rest] = [...(options.prefix ?? []), process.execPath, '--import', 'tsx', script, ...args];
  return run(command, rest, options);
}

/** Polls `probe` every 100 ms until it returns something truthy; throws naming `what` after `timeoutMs`. */
export async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The exit code, or an error naming `what` (so that a cleanup still runs) when it is still running after `ms`. */
export async function exitWithin(p: Proc, what: string, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} still running after ${ms / 1000} s:\n${p.output}`)), ms);
  });
  try {
    return await Promise.race([p.exit, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** SIGTERM (to its group when it has one), then SIGKILL when it is still there 10 s later. */
export async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const signal = (sig: NodeJS.Signals) => {
    try {
      if (p.group) process.kill(-p.child.pid!, sig);
      else p.child.kill(sig);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  await exitWithin(p, 'a process sent SIGTERM', 10_000).catch(() => signal('SIGKILL'));
}

/**
 * The tests' coordinator: DANN SynDigits -> MNIST on `paper`, 200 images per domain, global batch 16, 2 epochs
 * (20 steps), a checkpoint every 3 steps; `extra` options override these. `url()` waits until it listens.
 */
export function coordinator(
  out: string,
  extra: string[] = [],
  port = '0',
  options: RunOptions = {},
): Proc & { url: () => Promise<string> } {
  const p = runScript(
    SERVE,
    [
      ...[
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
      ],
      ...[
        '--batch-size',
        '16',
        '--epochs',
        '2',
        '--eval-limit',
        '50',
        '--port',
        port,
        '--token',
        TOKEN,
        '--out',
        out,
        '--checkpoint-every',
        '3',
      ],
      ...extra,
    ],
    options,
  );
  const file = join(out, 'coordinator.json');
  const listening = () =>
    existsSync(file) &&
    p.output.includes('listening') &&
    (JSON.parse(readFileSync(file, 'utf8')) as { url: string }).url;
  return Object.assign(p, { url: () => until('the coordinator to listen', listening) });
}
