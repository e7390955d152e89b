/**
 * The README's main job (`npm start`): a local coordinator and two local trainers train the run configs/main.json
 * defines (the offline pair SynDigits -> MNIST with the mean teacher on a short schedule; any run setting overrides
 * it), then the results table and next commands.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { RUN_OPTIONS, resolveRun, runFlags } from '@dann/training';
import { parseCommand, positiveInt, runMain } from '@dann/cli';

const command = {
  name: 'main-job',
  summary:
    'Starts a coordinator and local trainers on loopback, trains the run configs/main.json defines (SynDigits -> MNIST with the mean teacher, on a short schedule), prints the results.',
  usage: 'npm start [-- --trainers 2 --config configs/main.json --method dann --epochs 3 --out runs/main]',
  options: {
    ...RUN_OPTIONS,
    config: { ...RUN_OPTIONS.config, default: 'configs/main.json' },
    trainers: { type: 'string', description: 'local trainer processes', default: '2' },
    out: { type: 'string', description: 'run directory', default: 'runs/main' },
  },
} as const;

runMain(async () => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const v = args.values;
  const trainers = positiveInt('trainers', v.trainers);
  // Checked here, so that a mistake is one sentence before any process starts; the coordinator reads the same.
  const flags = runFlags(v, args.given);
  delete flags.config; // passed on as v.config, the default included
  resolveRun({ ...flags, config: v.config });
  const runArgs = Object.entries(flags).flatMap(([name, value]) => [`--${name}`, String(value)]);
  const token = randomBytes(16).toString('hex');
  const children: ChildProcess[] = [];
  const start = (label: string, script: string, argv: string[]) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DANN_TOKEN: token },
    });
    const prefix = (chunk: Buffer) =>
      chunk
        .toString()
        .split('\n')
        .filter(Boolean)
        .forEach((l) => console.log(`${label.padEnd(12)}${l}`));
    child.stdout!.on('data', prefix);
    child.stderr!.on('data', prefix);
    children.push(child);
    return child;
  };
  const stop = () => children.forEach((c) => c.exitCode === null && c.kill('SIGTERM'));
  process.on('SIGINT', () => {
    stop();
    process.exit(130);
  });
  const info = join(v.out, 'coordinator.json');
  rmSync(info, { force: true });
  const coordinator = start('coordinator', 'apps/coordinator/src/serve.ts', [
    '--config',
    v.config,
    ...runArgs,
    '--min-trainers',
    String(trainers),
    '--port',
    '0',
    '--out',
    v.out,
  ]);
  const exited = new Promise<number | null>((resolve) => coordinator.on('exit', resolve));
  let url = '';
  for (let waited = 0; !url; waited += 200) {
    if (coordinator.exitCode !== null)
      throw new Error('the coordinator stopped before listening (see its lines above).');
    if (waited > 120_000) throw new Error('the coordinator did not start listening within 2 minutes.');
    await new Promise((r) => setTimeout(r, 200));
    if (existsSync(info)) url = (JSON.parse(readFileSync(info, 'utf8')) as { url: string }).url;
  }
  for (let i = 1; i <= trainers; i++)
    start(`trainer ${i}`, 'apps/trainer/src/start.ts', ['--coordinator', url, '--name', `local-${i}`]);
  const code = await exited;
  stop();
  if (code !== 0) throw new Error(`the coordinator exited with code ${code}.`);
  console.log(`\n${readFileSync(join(v.out, 'results.md'), 'utf8')}`);
  console.log(
    [
      'next:',
      `  npx nx run edge-demo:serve -- --model ${join(v.out, 'model.onnx')}   draw digits in the browser (http://127.0.0.1:8080/)`,
      `  npx nx run edge-demo:classify -- --model ${join(v.out, 'model.onnx')} a.png   classify image files`,
      `  npx nx run tools:evaluate -- ${v.out}     full test sets, per-class accuracy, confusion matrices`,
      `  npx nx run tools:plot -- ${v.out}         loss curves, confusion matrix, joint feature embedding`,
      '  npx nx run coordinator:serve -- --usage   a longer run; trainers on other machines join with trainer:start',
    ].join('\n'),
  );
});
