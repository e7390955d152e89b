import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatSummary, markdownTable, summarize, type Summary } from './stats.ts';

export interface ScalingResult {
  readonly trainers: number;
  /** Source samples per second over the timed steps. */
  readonly rate: number;
  /** Per-step milliseconds: wall, the slowest shard's compute, the coordinator's average + update, and the rest. */
  readonly stepMs: Summary;
  readonly computeMs: Summary;
  readonly reduceMs: Summary;
  readonly otherMs: Summary;
}

interface StepLine {
  step: number;
  stepMs: number;
  computeMs: number;
  reduceMs: number;
}

function runNode(args: string[], env: NodeJS.ProcessEnv): Promise<number | null> {
  return new Promise((resolve) =>
    spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: 'ignore', env }).on('exit', resolve),
  );
}

/** A real coordinator and N local trainers on loopback (seed network, DANN, global batch `batch`). */
export async function benchScaling(
  trainerCounts: readonly number[],
  batch: number,
  steps: number,
): Promise<ScalingResult[]> {
  const results: ScalingResult[] = [];
  for (const n of trainerCounts) {
    const out = mkdtempSync(join(tmpdir(), 'dann-scaling-'));
    const env = { ...process.env, DANN_TOKEN: 'bench' };
    const port = String(21000 + (process.pid % 10000));
    const limit = String(batch * (steps + 2) + 200);
    const coordinator = runNode(
      [
        'apps/coordinator/src/serve.ts',
        '--preset',
        'seed',
        '--method',
        'dann',
        '--batch-size',
        String(batch),
        '--limit',
        limit,
        '--val-count',
        '200',
        '--epochs',
        '1',
        '--min-trainers',
        String(n),
        '--port',
        port,
        '--eval-limit',
        '10',
        '--out',
        out,
      ],
      env,
    );
    await new Promise((r) => setTimeout(r, 1500));
    const trainers = Array.from({ length: n }, (_, i) =>
      runNode(
        [
          'apps/trainer/src/start.ts',
          '--coordinator',
          `ws://127.0.0.1:${port}`,
          '--name',
          `bench-${i}`,
          '--backend',
          'wasm',
        ],
        env,
      ),
    );
    const code = await coordinator;
    await Promise.all(trainers);
    if (code !== 0)
      throw new Error(
        `the scaling run with ${n} trainer(s) failed (coordinator exit ${code}); see ${out}/coordinator.log.`,
      );
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as StepLine & { type: string })
      .filter((l) => l.type === 'step')
      .slice(2);
    rmSync(out, { recursive: true });
    const total = lines.reduce((a, l) => a + l.stepMs, 0);
    results.push({
      trainers: n,
      rate: (batch * lines.length * 1000) / total,
      stepMs: summarize(lines.map((l) => l.stepMs)),
      computeMs: summarize(lines.map((l) => l.computeMs)),
      reduceMs: summarize(lines.map((l) => l.reduceMs)),
      otherMs: summarize(lines.map((l) => l.stepMs - l.computeMs - l.reduceMs)),
    });
  }
  return results;
}

export function scalingReport(batch: number, results: readonly ScalingResult[]): string {
  const base = results[0]?.rate ?? NaN;
  return [
    `\`seed\` network, DANN, global batch ${batch} split over the trainers, all processes on this machine over loopback.`,
    "Per step (median, min–max): the slowest shard's compute, the coordinator's average + encode (its own replica's update",
    'runs after the update frames are out), and the rest',
    '(frames on the wire, the trainers applying the update, waiting).',
    '',
    markdownTable(
      [
        'trainers',
        'source samples/s',
        'vs 1 trainer',
        'step ms',
        'compute ms',
        'average + encode ms',
        'communication + waiting ms',
      ],
      results.map((r) => [
        String(r.trainers),
        r.rate.toFixed(1),
        `${(r.rate / base).toFixed(2)}x`,
        formatSummary(r.stepMs, 0),
        formatSummary(r.computeMs, 0),
        formatSummary(r.reduceMs, 1),
        formatSummary(r.otherMs, 0),
      ]),
    ),
  ].join('\n');
}
