import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '@dann/backend';
import { resolveRun, Trainer } from '@dann/training';
import { decodeFrame, type Frame, type Hello } from '@dann/protocol';
import { Coordinator } from './coordinator.ts';
import type { Peer } from './hub.ts';
import { Relay } from './relay.ts';
import { Replica, type ReplicaOutcome } from './replica.ts';
import { loadRunData } from './run-data.ts';

const backend = { backend: 'wasm', device: 'cpu' };
const POLICY = {
  checksumEvery: 1,
  minTrainers: 1,
  stepTimeoutMs: 60_000,
  aggregate: 'mean',
  clipFactor: 3,
  maxOutlierSteps: 0,
  resyncIntervalMs: 0,
} as const;

/**
 * Wires a node below (a Replica or a Relay's upstream side) to a node above (a Coordinator or a Relay's trainer
 * side) in memory: each side's frames reach the other on a later turn of the event loop, as over a socket.
 */
function link(
  above: { join(h: Hello, p: Peer): number | null; receive(id: number, f: Frame): string | null },
  below: (frame: Frame, raw: Uint8Array) => Promise<ReplicaOutcome> | ReplicaOutcome,
  fail: (err: unknown) => void,
): (bytes: Uint8Array) => void {
  let id: number | null = null;
  const peer: Peer = {
    send: (bytes) =>
      setImmediate(() =>
        Promise.resolve()
          .then(() => below(decodeFrame(bytes, { maxPayload: 1 << 24 }), bytes))
          .then((o) => {
            if (o.kind === 'fatal' || o.kind === 'resync') throw new Error(o.message);
          })
          .catch(fail),
      ),
    close: () => {},
  };
  // The first frame up is the hello, as on a socket.
  return (bytes) =>
    setImmediate(() => {
      const frame = decodeFrame(bytes, { maxPayload: 1 << 24 });
      if (id === null && frame.message.type === 'hello') return void (id = above.join(frame.message, peer));
      const why = above.receive(id!, frame);
      if (why) fail(new Error(`refused: ${why}`));
    });
}

/** A coordinator with `direct` trainers of its own and one relay over `below` trainers; runs it to the end. */
async function runTree(direct: number, below: number) {
  const dir = mkdtempSync(join(tmpdir(), 'dann-relay-'));
  const { settings, config: run } = resolveRun({ limit: 50, 'val-count': 10, 'batch-size': 16, epochs: 1 });
  const data = loadRunData(run.data, { dataDir: join(dir, 'data') });
  const lines: string[] = [];
  const log = (l: string) => lines.push(l);
  let failure: unknown = null;
  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));
  const fail = (err: unknown) => {
    failure ??= err;
    finished();
  };
  const root = new Coordinator({
    ...POLICY,
    minTrainers: direct + 1,
    run,
    settings,
    wireDtype: 'f32',
    counts: { source: data.sourceTrain.count, target: data.targetTrain.count },
    out: dir,
    resume: false,
    log,
    onDone: () => finished(),
  });
  const replicas: Replica[] = [];
  const trainerUnder = (node: Parameters<typeof link>[0], name: string) => {
    let up!: (b: Uint8Array) => void;
    const replica = new Replica({ name, backend, preloaded: data, log: () => {}, send: (b) => up(b) });
    up = link(node, (f) => replica.receive(f), fail);
    replicas.push(replica);
    replica.hello();
  };
  let toRoot!: (b: Uint8Array) => void;
  const relay = new Relay({ ...POLICY, minTrainers: below, name: 'relay', log, send: (b) => toRoot(b) });
  toRoot = link(root, (f, raw) => relay.fromUpstream(f, raw), fail);
  relay.hello();
  await new Promise<void>((resolve) => {
    const poll = () => (relay.ready || failure ? resolve() : setImmediate(poll));
    poll();
  });
  for (let i = 0; i < below; i++) trainerUnder(relay, `below${i}`);
  for (let i = 0; i < direct; i++) trainerUnder(root, `direct${i}`);
  await done;
  await Promise.all(replicas.map((r) => r.dispose()));
  rmSync(dir, { recursive: true, force: true });
  if (failure) throw failure;
  return { root, relay, replicas, lines, run, data };
}

test('a coordinator, a relay and one trainer below it train exactly as one trainer alone: the same weights, bit for bit', {
  timeout: 120_000,
}, async () => {
  await selectBackend({ backend: 'wasm' });
  const { root, relay, run, data } = await runTree(0, 1);
  assert.equal(root.step, 3); // 40 training images in batches of 16
  assert.equal(relay.step, 3);
  const plain = new Trainer(run.train, data.sourceTrain, data.targetTrain);
  while (!plain.done) await plain.trainStep();
  assert.deepEqual(root.weights, plain.weights);
  plain.dispose();
});

test('a relay over two trainers beside a direct trainer: every sample once per epoch, every replica identical to the coordinator at every step', {
  timeout: 120_000,
}, async () => {
  await selectBackend({ backend: 'wasm' });
  const { root, relay, replicas, lines } = await runTree(1, 2);
  assert.equal(root.step, 3);
  assert.equal(relay.step, 3);
  assert.deepEqual(root.epochsExactlyOnce(), { 0: { once: 40, never: 0, more: 0 } });
  // Every replica sent a checksum after every step (checksumEvery 1); a differing one would have been resynced.
  assert.equal(lines.filter((l) => /differ/.test(l)).length, 0, lines.join('\n'));
  assert.equal(replicas.length, 3);
  // The coordinator combined two answers per step (the relay's covers two trainers' shards).
  assert.deepEqual(
    root.metrics.map((m) => m.trainers),
    [2, 2, 2],
  );
});
