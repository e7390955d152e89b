import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeCheckpoint, resolveRun, type RunSettings } from '@dann/training';
import { decodeFrame, PROTOCOL_VERSION, type Assign, type Frame, type Hello } from '@dann/protocol';
import { Coordinator, type CoordinatorOptions } from './coordinator.ts';

// Batches of 8 (the tests give the training-set sizes), with the project defaults otherwise.
const settings: RunSettings = { limit: 40, 'val-count': 8, epochs: 1, 'batch-size': 8, 'lambda-max': 1 };
const run = resolveRun(settings).config;

function options(out: string, lines: string[]): CoordinatorOptions {
  return {
    run,
    settings,
    checksumEvery: 10,
    counts: { source: 32, target: 32 },
    minTrainers: 1,
    stepTimeoutMs: 1000,
    aggregate: 'clipped-mean',
    clipFactor: 3,
    maxOutlierSteps: 3,
    resyncIntervalMs: 10_000,
    wireDtype: 'f32',
    out,
    resume: false,
    log: (l) => lines.push(l),
    onDone: () => {},
  };
}

test('a checkpoint that cannot be written is reported, retried, and never leaves a broken file; a resumed run gets its accounting back', async () => {
  const out = mkdtempSync(join(tmpdir(), 'dann-ckpt-'));
  const lines: string[] = [];
  mkdirSync(join(out, 'checkpoint.bin')); // a directory in its place: the rename fails
  const c = new Coordinator(options(out, lines));
  assert.match(
    lines.join('\n'),
    /could not write .*checkpoint\.bin at step 0 \((EISDIR|ENOTEMPTY|EEXIST)\); the previous checkpoint is intact; retrying in 2 s/,
  );
  assert.deepEqual(
    readdirSync(out).filter((f) => f.includes('.tmp')),
    [],
    'no temp file left behind',
  );
  rmSync(join(out, 'checkpoint.bin'), { recursive: true });
  await new Promise((r) => setTimeout(r, 2300));
  const saved = decodeCheckpoint(readFileSync(join(out, 'checkpoint.bin')));
  assert.equal(saved.step, 0);
  assert.deepEqual(saved.weights, c.weights);
  // Accounting travels in the checkpoint.
  c.usage.set(
    0,
    Uint8Array.from({ length: 32 }, (_, i) => (i < 20 ? 1 : 0)),
  );
  assert.equal(c.checkpoint(), true);
  const resumed = new Coordinator({ ...options(out, lines), resume: true });
  assert.deepEqual(resumed.epochsExactlyOnce(), { 0: { once: 20, never: 12, more: 0 } });
  rmSync(out, { recursive: true });
});

/** A trainer seen from the coordinator: it records what it is sent and whether it was closed. */
class FakePeer {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | null = null;
  send(bytes: Uint8Array): void {
    this.frames.push(decodeFrame(bytes, { maxPayload: 1 << 24 }));
  }
  close(code: number, reason: string): void {
    this.closed = { code, reason };
  }
  /** The messages of one type received since they were last taken (the others stay). */
  take<T extends Frame['message']['type']>(type: T): Extract<Frame['message'], { type: T }>[] {
    const got = this.frames
      .filter((f) => f.message.type === type)
      .map((f) => f.message as Extract<Frame['message'], { type: T }>);
    this.frames.splice(0, this.frames.length, ...this.frames.filter((f) => f.message.type !== type));
    return got;
  }
}

const hello = (name: string): Hello => ({
  type: 'hello',
  protocol: PROTOCOL_VERSION,
  name,
  backend: 'fake',
  device: 'none',
});

function gradientFrame(a: Assign, values: Float32Array): Frame {
  return {
    message: {
      type: 'gradient',
      step: a.step,
      shard: a.shard,
      samples: a.source.length,
      labelLoss: 1,
      domainLoss: 0.5,
      labelAcc: 0.5,
      domainAcc: 0.5,
      computeMs: 1,
    },
    payload: values,
  };
}

test('fake peers: membership, a step, a leaver mid-step re-planned, one resync per interval, an outlier recomputed then dropped, the end', async () => {
  const out = mkdtempSync(join(tmpdir(), 'dann-fake-'));
  const lines: string[] = [];
  let done = false;
  const c = new Coordinator({
    ...options(out, lines),
    counts: { source: 40, target: 40 },
    minTrainers: 2,
    resyncIntervalMs: 300,
    onDone: () => (done = true),
  });
  const honest = (scale = 1) => new Float32Array(c.paramCount).fill(1e-3 * scale);
  const [a, b, x] = [new FakePeer(), new FakePeer(), new FakePeer()];

  const ida = c.join(hello('a'), a)!;
  assert.deepEqual(
    a.frames.map((f) => f.message.type),
    ['welcome', 'state', 'wait'],
    'below --min-trainers the first one waits',
  );
  for (const type of ['welcome', 'state', 'wait'] as const) a.take(type);
  const idb = c.join(hello('a'), b)!; // the same name: made unique
  assert.deepEqual(
    c.trainers().map((t) => t.name),
    ['a', `a#${idb}`],
  );
  assert.equal(c.totalSteps, 5);
  assert.equal(b.take('state').length, 1);
  // Step 0: both get a shard; both answer; both get the same update.
  const [sa] = a.take('assign'),
    [sb] = b.take('assign');
  assert.deepEqual([sa.step, sb.step, sa.source.length + sb.source.length], [0, 0, 8]);
  assert.equal(c.receive(ida, gradientFrame(sa, honest())), null);
  assert.equal(c.receive(idb, gradientFrame(sb, honest())), null);
  const [ua] = a.take('update'),
    [ub] = b.take('update');
  assert.deepEqual([ua.step, ub.step, c.step], [0, 0, 1]);

  // Step 1: b leaves before answering; its shard goes to a within the same step.
  // (maybeStartStep runs on setImmediate in real runs; here it is called directly.)
  c.maybeStartStep();
  const [s1a] = a.take('assign');
  b.take('assign');
  c.leave(idb, 'disconnected');
  const [replanned] = a.take('assign');
  assert.equal(replanned.step, 1);
  assert.equal(s1a.source.length + replanned.source.length, 8);
  c.receive(ida, gradientFrame(s1a, honest()));
  c.receive(ida, gradientFrame(replanned, honest()));
  assert.equal(c.step, 2);
  assert.deepEqual(c.epochsExactlyOnce()[0].more, 0);

  // A wrong checksum gets the state again (the state at joining counts as one), but only once per interval.
  a.take('update');
  await new Promise((r) => setTimeout(r, 350));
  assert.equal(c.receive(ida, { message: { type: 'checksum', step: 2, value: 1 } }), null);
  assert.equal(a.take('state').length, 1);
  assert.match(c.receive(ida, { message: { type: 'checksum', step: 2, value: 1 } })!, /the last resync was \d+ ms ago/);
  assert.equal(a.take('state').length, 0);

  // A poisoner joins; its outlier shard is recomputed by a; after 3 such steps it is dropped and named.
  const idx = c.join(hello('x'), x)!;
  x.take('state');
  for (let k = 0; k < 3 && !x.closed; k++) {
    c.maybeStartStep();
    const [own] = a.take('assign'),
      [bad] = x.take('assign');
    c.receive(ida, gradientFrame(own, honest()));
    c.receive(idx, gradientFrame(bad, honest(-1e6)));
    const redo = a.take('assign');
    assert.equal(
      redo.reduce((n, s) => n + s.source.length, 0),
      bad.source.length,
      "the outlier's samples are recomputed by a",
    );
    for (const s of redo) c.receive(ida, gradientFrame(s, honest()));
  }
  assert.deepEqual(x.closed, { code: 4001, reason: 'gradient an outlier too often' });
  assert.deepEqual(
    c.removed.map((r) => [r.id, r.name, r.reason]),
    [[idx, 'x', 'gradient norm an outlier in 3 consecutive steps']],
  );
  assert.equal(c.step, 5);
  assert.ok(c.metrics.slice(-3).every((m) => m.outliers === 1 && m.clipped === 0));
  // The run ends after its 5 steps: a is told (by code) and the final checkpoint is written.
  c.maybeStartStep();
  assert.equal(done, true);
  assert.deepEqual(
    a.take('leave').map((m) => m.code),
    ['finished'],
  );
  assert.deepEqual(c.epochsExactlyOnce(), { 0: { once: 40, never: 0, more: 0 } });
  assert.equal(decodeCheckpoint(readFileSync(join(out, 'checkpoint.bin'))).step, 5);
  rmSync(out, { recursive: true });
});
