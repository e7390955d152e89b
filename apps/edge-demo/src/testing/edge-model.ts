import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The small model the edge demo's test files share, so that it is trained once per test run rather than once per
 * file: trainer:train learns MNIST briefly (source-only, `paper`, 6,000 images, one epoch, ~30 s here), tools:evaluate
 * scores it on 500 test images per domain and tools:export-onnx exports it (fp32 and int8, verified).
 *
 * The test files of one run are processes of one `node --test` runner, their parent, so the model lives in
 * `$TMPDIR/dann-edge-model-<runner pid>-<runner start time>`: the first file to ask builds it (under a lock
 * directory beside it), the others wait for it and reuse it. Folders of runners that have ended are removed when
 * the next run starts; one run's folder (~3 MB) stays until then. A test file run on its own (not under
 * `node --test`) builds a model of its own and removes it at exit, so it never reuses one from an older run.
 */
export interface EdgeModel {
  /** The trainer's run folder: config.json, best.bin, checkpoint.bin, results.json, model(.int8).onnx/.json. */
  readonly runDir: string;
  /** runDir/model.onnx (fp32). */
  readonly model: string;
  /** What tools:export-onnx printed. */
  readonly exportOutput: string;
}

export const ROOT = fileURLToPath(new URL('../../../..', import.meta.url));
const PREFIX = 'dann-edge-model-';

/** Runs a workspace script with tsx; resolves to its output, rejects with the output when it fails. */
export function runScript(script: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, script), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolve(output) : reject(new Error(`${script} failed (${signal ?? `exit ${code}`}):\n${output}`)),
    );
  });
}

/** The start time (clock ticks since boot) of process `pid`, or undefined when it is not running. */
function startTime(pid: number): string | undefined {
  try {
    // Field 22 of /proc/PID/stat; the command name (field 2) may hold spaces, so count from its closing bracket.
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[19];
  } catch {
    return undefined;
  }
}

function removeStale(): void {
  for (const name of readdirSync(tmpdir())) {
    const m = new RegExp(`^${PREFIX}(\\d+)-(\\d+)(\\.lock)?$`).exec(name);
    if (m && startTime(Number(m[1])) !== m[2]) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

async function build(runDir: string): Promise<string> {
  await runScript('apps/trainer/src/train.ts', [
    '--method',
    'source-only',
    '--source',
    'mnist',
    '--target',
    'mnistm',
    '--preset',
    'paper',
    '--limit',
    '6000',
    '--epochs',
    '1',
    '--lr',
    '0.002',
    '--eval-limit',
    '300',
    '--val-count',
    '200',
    '--backend',
    'wasm',
    '--out',
    runDir,
  ]);
  await runScript('tools/src/evaluate.ts', [runDir, '--limit', '500']);
  return runScript('tools/src/export-onnx.ts', [runDir, '--verify-count', '128', '--int8', '--eval-limit', '500']);
}

let mine: Promise<EdgeModel> | undefined;

/** The shared model, built by the first caller of this test run. */
export function edgeModel(): Promise<EdgeModel> {
  return (mine ??= process.env.NODE_TEST_CONTEXT ? shared() : alone());
}

const result = (dir: string): EdgeModel => {
  const runDir = join(dir, 'run');
  return {
    runDir,
    model: join(runDir, 'model.onnx'),
    exportOutput: readFileSync(join(dir, 'export-output.txt'), 'utf8'),
  };
};

/** Not under `node --test` (a test file run on its own): a model of its own, removed at exit. */
async function alone(): Promise<EdgeModel> {
  const dir = mkdtempSync(join(tmpdir(), 'dann-edge-model-alone-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'export-output.txt'), await build(join(dir, 'run')));
  return result(dir);
}

async function shared(): Promise<EdgeModel> {
  const runner = process.ppid;
  const dir = join(tmpdir(), `${PREFIX}${runner}-${startTime(runner) ?? 'unknown'}`);
  const lock = `${dir}.lock`,
    done = join(dir, 'export-output.txt');
  for (;;) {
    if (existsSync(done)) return result(dir);
    try {
      mkdirSync(lock);
    } catch {
      // Another test file is building it: wait until it is done, or gone (a builder that died leaves its lock behind).
      let owner = 0;
      try {
        owner = Number(readFileSync(join(lock, 'pid'), 'utf8'));
      } catch {
        // not written yet, or just removed
      }
      if (owner > 0 && startTime(owner) === undefined) rmSync(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    try {
      writeFileSync(join(lock, 'pid'), String(process.pid));
      if (existsSync(done)) return result(dir);
      removeStale();
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const output = await build(join(dir, 'run'));
      writeFileSync(`${done}.tmp`, output);
      renameSync(`${done}.tmp`, done);
      return result(dir);
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
}
