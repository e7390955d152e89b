/** Real processes for the integration tests and the soak: spawn one with its output captured, wait for a condition. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../..', import.meta.url));

export interface Proc {
  readonly child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output: string;
  readonly exit: Promise<number | null>;
}

/** Runs `command args` in the workspace root; `env` adds to this process's environment. */
export function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const p: Proc = { child, output: '', exit: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
  child.stdout!.on('data', (d) => (p.output += d));
  child.stderr!.on('data', (d) => (p.output += d));
  return p;
}

/** A TypeScript entry point of the workspace, run by Node through tsx. */
export const runScript = (script: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc =>
  run(process.execPath, ['--import', 'tsx', script, ...args], env);

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
