/**
 * `npx nx run coordinator:soak`: the hostile-peer scenario (hostile.ts) at full size, clean and
 * attacked side by side, as a table of outcomes (the short version runs in `npm test`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommand, positiveInt, runMain } from '@dann/cli';
import { runScenario, scenarioJob, type ScenarioReport } from './hostile.ts';

const command = {
  name: 'soak',
  summary: 'Trains one job clean and once more under every hostile-peer attack at once; prints both side by side.',
  usage:
    'npx nx run coordinator:soak [-- --idle 5000 --fuzz-connections 500 --file-limit 1024 --epochs 3 --limit 4096]',
  options: {
    idle: {
      type: 'string',
      description: "idle TCP connections (beyond the coordinator's open-file limit)",
      default: '5000',
    },
    'idle-addresses': { type: 'string', description: 'loopback addresses they come from', default: '50' },
    'fuzz-connections': {
      type: 'string',
      description: 'connections sending hello + 20 random or mutated frames each',
      default: '500',
    },
    bombs: { type: 'string', description: 'frames with 100,000-key MessagePack headers', default: '20' },
    'poison-rejoins': {
      type: 'string',
      description: 'times the poisoning peer joins again after being dropped',
      default: '3',
    },
    'memory-seconds': {
      type: 'string',
      description: 'seconds the non-reading peer sends wrong checksums',
      default: '20',
    },
    'file-limit': { type: 'string', description: "the coordinator's ulimit -n", default: '1024' },
    epochs: { type: 'string', description: 'epochs of the job (MNIST -> MNIST-M-style, paper network)', default: '3' },
    limit: { type: 'string', description: 'training images per domain', default: '4096' },
  },
} as const;

runMain(async () => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const v = args.values;
  const job = scenarioJob({
    limit: positiveInt('limit', v.limit),
    valCount: 256,
    batchSize: 64,
    epochs: positiveInt('epochs', v.epochs),
    evalLimit: 10_000,
    stepTimeoutMs: 10_000,
  });
  const reports: ScenarioReport[] = [];
  for (const attack of [false, true]) {
    const out = mkdtempSync(join(tmpdir(), 'dann-soak-'));
    console.log(`${attack ? 'attacked' : 'clean'} run in ${out}`);
    reports.push(
      await runScenario({
        out,
        attack,
        fileLimit: positiveInt('file-limit', v['file-limit']),
        idleConnections: positiveInt('idle', v.idle),
        idleAddresses: positiveInt('idle-addresses', v['idle-addresses']),
        fuzzConnections: positiveInt('fuzz-connections', v['fuzz-connections']),
        headerBombs: positiveInt('bombs', v.bombs),
        poisonRejoins: Number(v['poison-rejoins']),
        memoryAttackSeconds: positiveInt('memory-seconds', v['memory-seconds']),
        job,
        log: (l) => console.log(`  ${l}`),
      }),
    );
    rmSync(out, { recursive: true });
  }
  const [clean, hostile] = reports;
  const once = (r: ScenarioReport) =>
    r.accounting ? Object.values(r.accounting).every((e) => e.never === 0 && e.more === 0) : false;
  const rows: [string, string, string][] = [
    ['coordinator exit code', String(clean.exitCode), String(hostile.exitCode)],
    ["honest trainers' exit codes", clean.trainerExitCodes.join(', '), hostile.trainerExitCodes.join(', ')],
    ['steps', String(clean.steps), String(hostile.steps)],
    ['every source sample once per epoch', String(once(clean)), String(once(hostile))],
    [
      'source / target test accuracy (10k each)',
      `${clean.accuracy?.source} / ${clean.accuracy?.target}`,
      `${hostile.accuracy?.source} / ${hostile.accuracy?.target}`,
    ],
    ['coordinator peak RSS (MiB)', clean.peakRssMiB.toFixed(0), hostile.peakRssMiB.toFixed(0)],
    ['slowest /status answer (ms, polled every 250 ms)', String(clean.statusMaxMs), String(hostile.statusMaxMs)],
    ['wall time (s)', clean.seconds.toFixed(0), hostile.seconds.toFixed(0)],
    [
      'idle connections: opened / closed by the coordinator / not opened',
      '-',
      `${hostile.idle.opened} / ${hostile.idle.closedByCoordinator} / ${hostile.idle.failedToOpen}`,
    ],
    ['random and mutated frames (connections closed)', '-', `${hostile.fuzz.frames} (${hostile.fuzz.closes})`],
    ['100,000-key headers sent / refused', '-', `${hostile.bombs.sent} / ${hostile.bombs.refused}`],
    [
      'non-reading peer: wrong checksums sent, close code',
      '-',
      `${hostile.memory.checksums}, ${hostile.memory.closeCode}`,
    ],
    [
      'poisoning peer (x -1e6): joins, gradients sent, close codes',
      '-',
      `${hostile.poison.joins}, ${hostile.poison.gradients}, ${hostile.poison.closeCodes.join(' ')}`,
    ],
    [
      'coordinator log lines (of which refusal lines)',
      `${clean.coordinatorLines} (${clean.refusedLines})`,
      `${hostile.coordinatorLines} (${hostile.refusedLines})`,
    ],
    [
      'token in the log; log file mode',
      `${clean.tokenInLog}; ${clean.logMode.toString(8)}`,
      `${hostile.tokenInLog}; ${hostile.logMode.toString(8)}`,
    ],
  ];
  console.log(
    ['', '| | clean | attacked |', '| --- | --- | --- |', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n'),
  );
});
