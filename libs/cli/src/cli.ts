import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';

/**
 * Option parsing for the tools' CLIs. Nx keeps `--help` for itself even after `--`,
 * so every command also answers `--usage` (and a bare `help`) with its documented options.
 */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly description: string;
  readonly default?: string | boolean;
}

export interface Command<O extends Record<string, OptionSpec>> {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  readonly options: O;
}

type Values<O extends Record<string, OptionSpec>> = {
  [K in keyof O]: O[K]['type'] extends 'boolean'
    ? boolean
    : O[K]['default'] extends string
      ? string
      : string | undefined;
};

export function helpText<O extends Record<string, OptionSpec>>(cmd: Command<O>): string {
  const lines = [`${cmd.summary}`, '', `usage: ${cmd.usage}`, '', 'options:'];
  for (const [key, spec] of Object.entries(cmd.options)) {
    const flag = spec.type === 'boolean' ? `--${key}` : `--${key} <value>`;
    const def = spec.default === undefined ? '' : ` (default: ${spec.default})`;
    lines.push(`  ${flag.padEnd(26)} ${spec.description}${def}`);
  }
  lines.push(`  ${'--usage'.padEnd(26)} print this help`);
  return lines.join('\n');
}

/**
 * Parses argv; returns null after printing help when asked for it. Throws one sentence on a bad option.
 * `given`: the options on the command line, as opposed to defaults.
 */
export function parseCommand<O extends Record<string, OptionSpec>>(
  cmd: Command<O>,
  argv: string[],
): { values: Values<O>; positionals: string[]; given: ReadonlySet<string> } | null {
  if (argv.includes('--usage') || argv[0] === 'help') {
    console.log(helpText(cmd));
    return null;
  }
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [key, spec] of Object.entries(cmd.options)) {
    options[key] =
      spec.default === undefined ? { type: spec.type } : { type: spec.type, default: spec.default as never };
  }
  try {
    const parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true, tokens: true });
    // The options the user gave (the rest hold their defaults): settings from a config file give way only to these.
    const given = new Set(parsed.tokens.flatMap((t) => (t.kind === 'option' ? [t.name] : [])));
    return { values: parsed.values as Values<O>, positionals: parsed.positionals, given };
  } catch (err) {
    throw new Error(`${cmd.name}: ${(err as Error).message.split('\n')[0]} (see --usage).`);
  }
}

/** Parses a whole positive integer option, or throws one sentence naming the option. */
export function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${value}".`);
  return n;
}

/** Checks that an option is one of the allowed words, or throws one sentence naming the option. */
export function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value))
    throw new Error(`--${name} must be one of ${allowed.join(', ')}, got "${value}".`);
  return value as T;
}

/** Parses a finite number >= 0, or throws one sentence naming the option. */
export function nonNegative(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got "${value}".`);
  return n;
}

/** Runs a CLI main: errors become one line on stderr and exit code 1, never a stack trace. */
export function runMain(main: () => Promise<void> | void): void {
  Promise.resolve()
    .then(main)
    .catch((err: unknown) => {
      console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    });
}

/**
 * The value of `--NAME` that the user gave to Nx itself, before the `--`, when this program runs
 * under `nx run` (`npx nx run trainer:start --gpu 1 -- --token T`): Nx 24 drops such flags instead of
 * forwarding them when a `--` follows. Read from the invoking nx process's command line
 * (NX_INVOCATION_ANCESTOR_PIDS, /proc on Linux); undefined when absent or unreadable.
 */
export function nxInvocationOption(
  name: string,
  env: NodeJS.ProcessEnv = process.env,
  readCmdline = (pid: string) => readFileSync(`/proc/${pid}/cmdline`, 'utf8'),
): string | undefined {
  // Outermost nx first in the list: when nx runs nx (a test task starting trainer:start), the innermost decides.
  for (const pid of (env.NX_INVOCATION_ANCESTOR_PIDS ?? '')
    .split(/[\s,]+/)
    .filter(Boolean)
    .reverse()) {
    let argv: string[];
    try {
      argv = readCmdline(pid).split('\0');
    } catch {
      continue;
    }
    const end = argv.indexOf('--');
    const before = end < 0 ? argv : argv.slice(0, end);
    for (let i = 0; i < before.length; i++) {
      if (before[i] === `--${name}` && i + 1 < before.length) return before[i + 1];
      if (before[i].startsWith(`--${name}=`)) return before[i].slice(name.length + 3);
    }
  }
  return undefined;
}

/** The token a trainer or relay presents: `--token`, else `--token-file`'s, else $DANN_TOKEN (undefined when none). */
export function presentedToken(flag: string | undefined, file: string | undefined): string | undefined {
  return flag ?? (file === undefined ? process.env.DANN_TOKEN : readTokenFile(file));
}

/** Reads a token file (surrounding whitespace dropped); one sentence when it is missing or empty. */
export function readTokenFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the token file ${file} (${(err as NodeJS.ErrnoException).code ?? err}).`);
  }
  const token = text.trim();
  if (!token) throw new Error(`the token file ${file} is empty.`);
  return token;
}

/** Reads PEM certificate(s) to trust (`--FLAG file`); one sentence when the file is missing or holds none. */
export function readCaFile(flag: string, file: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read --${flag} ${file} (${(err as NodeJS.ErrnoException).code ?? err}).`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`--${flag} ${file} holds no PEM certificate.`);
  return pem;
}
