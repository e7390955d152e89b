/**
 * Past one machine, on one: the coordinator and two trainers each in their own Linux network namespace, joined
 * by veth pairs shaped by tc (1 Gbit/s and 100 Mbit/s; with netem where the kernel has it, 0.5 ms and 10 ms of
 * latency), addresses only inside those namespaces. Needs root (CI runs as root); elsewhere skipped in one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { coordinator, runScript, SERVE, START, TOKEN, until } from './testing/processes.ts';

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });

/** Why this machine cannot run the test, or false. */
function cannotRun(): string | false {
  if (process.platform !== 'linux') return `network namespaces are Linux's, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root (CI runs as root)';
  try {
    ip('netns', 'add', `dann-probe-${process.pid}`);
    ip('netns', 'del', `dann-probe-${process.pid}`);
    return false;
  } catch (err) {
    return `ip netns does not work here (${String((err as Error).message).split('\n')[0]})`;
  }
}

/** Whether the kernel has netem (latency); tbf (bandwidth) is the fallback. */
function hasNetem(dev: string, ns: string): boolean {
  try {
    ip('netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'netem', 'delay', '1ms');
    ip('netns', 'exec', ns, 'tc', 'qdisc', 'del', 'dev', dev, 'root');
    return true;
  } catch {
    return false;
  }
}

interface LinkSpec {
  readonly mbit: number;
  readonly delayMs: number;
}

const LINKS: readonly LinkSpec[] = [
  { mbit: 1000, delayMs: 0.5 },
  { mbit: 100, delayMs: 10 },
];

const skip = cannotRun();
if (skip) console.log(`# skipping the network namespace test: ${skip}`);

/** Creates these namespaces (loopback up), removed with `out` after the test. */
function namespaces(t: { after(fn: () => void): void }, names: string[], out: string): void {
  t.after(() => {
    for (const ns of names)
      try {
        ip('netns', 'del', ns);
      } catch {}
    rmSync(out, { recursive: true, force: true });
  });
  for (const ns of names) {
    ip('netns', 'add', ns);
    ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
  }
}

/**
 * A veth pair between namespaces `a` (10.77.SUBNET.1) and `b` (10.77.SUBNET.2), both directions shaped to `link`
 * (netem where the kernel has it, else tbf: bandwidth only). Returns whether latency is emulated.
 */
function shapedLink(a: string, b: string, subnet: number, link: LinkSpec, tag: string): boolean {
  const [da, db] = [`da${subnet}-${tag}`, `db${subnet}-${tag}`];
  ip('link', 'add', da, 'netns', a, 'type', 'veth', 'peer', 'name', db, 'netns', b);
  ip('netns', 'exec', a, 'ip', 'addr', 'add', `10.77.${subnet}.1/24`, 'dev', da);
  ip('netns', 'exec', b, 'ip', 'addr', 'add', `10.77.${subnet}.2/24`, 'dev', db);
  ip('netns', 'exec', a, 'ip', 'link', 'set', da, 'up');
  ip('netns', 'exec', b, 'ip', 'link', 'set', db, 'up');
  const netem = hasNetem(da, a);
  // Both directions: each end shapes what it sends.
  for (const [ns, dev] of [
    [a, da],
    [b, db],
  ]) {
    const shape = netem
      ? ['netem', 'delay', `${link.delayMs}ms`, 'rate', `${link.mbit}mbit`]
      : ['tbf', 'rate', `${link.mbit}mbit`, 'burst', `${Math.max(64, link.mbit)}kb`, 'latency', '200ms'];
    ip('netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', dev, 'root', ...shape);
  }
  return netem;
}

/** The coordinator's step lines after the first two (kernels warm up there). */
function stepLines(out: string): { stepMs: number; computeMs: number; reduceMs: number; trainers: number }[] {
  return readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map(
      (l) => JSON.parse(l) as { type: string; stepMs: number; computeMs: number; reduceMs: number; trainers: number },
    )
    .filter((l) => l.type === 'step')
    .slice(2);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** An f32 frame of the paper network's gradient (or update). */
const FRAME_BYTES = 666_792 * 4;

function accounting(out: string): Record<string, { once: number; never: number; more: number }> {
  return JSON.parse(readFileSync(join(out, 'accounting.json'), 'utf8'));
}

test('coordinator and trainers in their own network namespaces over shaped links: the run finishes exactly once, at the step time the model predicts', {
  skip,
  timeout: 300_000,
}, async (t) => {
  const tag = String(process.pid % 100000);
  const cns = `dann-c-${tag}`;
  const tns = LINKS.map((_, i) => `dann-t${i}-${tag}`);
  const out = mkdtempSync(join(tmpdir(), 'dann-netns-'));
  namespaces(t, [cns, ...tns], out);
  const netem = LINKS.map((link, i) => shapedLink(cns, tns[i], i, link, tag)).every(Boolean);
  if (!netem) t.diagnostic('netem is not in this kernel: bandwidth shaped by tbf, latency not emulated');

  const c = coordinator(out, ['--min-trainers', '2', '--host', '0.0.0.0', '--insecure', '--epochs', '1'], '8765', {
    prefix: ['ip', 'netns', 'exec', cns],
  });
  await c.url();
  const trainers = tns.map((ns, i) =>
    runScript(
      START,
      ['--coordinator', `ws://10.77.${i}.1:8765`, '--token', TOKEN, '--name', `host-${i}`, '--backend', 'wasm'],
      { prefix: ['ip', 'netns', 'exec', ns] },
    ),
  );
  assert.equal(await c.exit, 0, c.output);
  assert.deepEqual(await Promise.all(trainers.map((p) => p.exit)), [0, 0], trainers.map((p) => p.output).join('\n'));
  assert.match(c.output, /trainer host-0 joined/);
  assert.match(c.output, /trainer host-1 joined/);
  assert.deepEqual(accounting(out), { 0: { once: 160, never: 0, more: 0 } });

  // The model: the slowest shard's compute, then the slowest link carrying a gradient up and the update down
  // (f32 frames of the paper network), its latency both ways, and the coordinator's average.
  const steps = stepLines(out);
  const slowest = LINKS.at(-1)!;
  const transferMs = (2 * FRAME_BYTES * 8) / (slowest.mbit * 1e3) + (netem ? 2 * slowest.delayMs : 0);
  const measured = median(steps.map((s) => s.stepMs));
  const predicted = median(steps.map((s) => s.computeMs + s.reduceMs)) + transferMs;
  t.diagnostic(
    `step ${measured.toFixed(0)} ms measured, ${predicted.toFixed(0)} ms predicted (transfer ${transferMs.toFixed(0)} ms)`,
  );
  // The shaping is real (the transfer is in every step), and nothing else of that size is.
  assert.ok(measured >= 0.9 * predicted, `measured ${measured} ms < predicted ${predicted} ms`);
  assert.ok(measured <= 1.5 * predicted + 100, `measured ${measured} ms >> predicted ${predicted} ms`);
});

test('a relay in another network namespace (coordinator:serve --upstream) over one shaped link: two trainers behind it cross that link as one gradient; the run finishes exactly once', {
  skip,
  timeout: 300_000,
}, async (t) => {
  const tag = String((process.pid + 1) % 100000);
  const [cns, rns] = [`dann-c-${tag}`, `dann-r-${tag}`];
  const out = mkdtempSync(join(tmpdir(), 'dann-netns-relay-'));
  namespaces(t, [cns, rns], out);
  const link = LINKS.at(-1)!;
  const netem = shapedLink(cns, rns, 0, link, tag);
  const c = coordinator(out, ['--min-trainers', '1', '--host', '0.0.0.0', '--insecure', '--epochs', '1'], '8765', {
    prefix: ['ip', 'netns', 'exec', cns],
  });
  await c.url();
  const inRelayNs = { prefix: ['ip', 'netns', 'exec', rns] };
  const relay = runScript(
    SERVE,
    [
      ...['--upstream', 'ws://10.77.0.1:8765', '--token', TOKEN, '--name', 'rack-1', '--port', '8766'],
      ...['--min-trainers', '2', '--step-timeout', '30000', '--out', join(out, 'relay')],
    ],
    inRelayNs,
  );
  await until('the relay to listen', () => relay.output.includes('relay listening'), 120_000);
  const trainers = [0, 1].map((i) =>
    runScript(
      START,
      ['--coordinator', 'ws://127.0.0.1:8766', '--token', TOKEN, '--name', `rack-1-${i}`, '--backend', 'wasm'],
      inRelayNs,
    ),
  );
  assert.equal(await c.exit, 0, c.output);
  assert.equal(await relay.exit, 0, relay.output);
  assert.deepEqual(await Promise.all(trainers.map((p) => p.exit)), [0, 0], trainers.map((p) => p.output).join('\n'));
  assert.match(c.output, /trainer rack-1 joined \(relay on/);
  assert.match(relay.output, /trainer rack-1-0 joined/);
  assert.match(relay.output, /trainer rack-1-1 joined/);
  assert.deepEqual(accounting(out), { 0: { once: 160, never: 0, more: 0 } });

  // One combined gradient per step crosses the link, and one update comes back: 2 frames, where two trainers
  // connected directly would send 4 over it.
  const steps = stepLines(out);
  assert.ok(
    steps.every((s) => s.trainers === 1),
    'the coordinator averaged one answer per step',
  );
  const transferMs = (2 * FRAME_BYTES * 8) / (link.mbit * 1e3) + (netem ? 2 * link.delayMs : 0);
  const measured = median(steps.map((s) => s.stepMs));
  const predicted = median(steps.map((s) => s.computeMs + s.reduceMs)) + transferMs;
  t.diagnostic(
    `step ${measured.toFixed(0)} ms measured, ${predicted.toFixed(0)} ms predicted (the relay's round + transfer ${transferMs.toFixed(0)} ms)`,
  );
  assert.ok(measured >= 0.9 * predicted, `measured ${measured} ms < predicted ${predicted} ms`);
  assert.ok(measured <= 1.5 * predicted + 100, `measured ${measured} ms >> predicted ${predicted} ms`);
});
