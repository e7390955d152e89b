/**
 * Integration tests on real processes over loopback: a coordinator and trainers (paper network,
 * 200 images per domain, global batch 16), plus a raw WebSocket client that misbehaves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import forge from 'node-forge';
import WebSocket from 'ws';
import { webgpuTestSkip } from '@dann/backend';
import { DannNetwork, decodeCheckpoint, PRESETS, RUN_OPTIONS } from '@dann/training';
import { encodeFrame, decodeFrame, PROTOCOL_VERSION, type Assign } from '@dann/protocol';
import { coordinator, runScript, SERVE, START, TOKEN, TRAIN, until } from './testing/processes.ts';

const trainer = (url: string, name: string, token = TOKEN, extra: string[] = [], backend = 'wasm') =>
  runScript(START, ['--coordinator', url, '--token', token, '--name', name, '--backend', backend, ...extra]);
const steps = (out: string) =>
  existsSync(join(out, 'metrics.jsonl'))
    ? readFileSync(join(out, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('"type":"step"')).length
    : 0;
const accounting = (out: string) =>
  JSON.parse(readFileSync(join(out, 'accounting.json'), 'utf8')) as Record<
    string,
    { once: number; never: number; more: number }
  >;
const EXACTLY_ONCE = { 0: { once: 160, never: 0, more: 0 }, 1: { once: 160, never: 0, more: 0 } };

function tempRun(): string {
  return mkdtempSync(join(tmpdir(), 'dann-dist-'));
}

test('two trainers finish a run, every source sample used once per epoch; a wrong token is refused and changes nothing', {
  timeout: 180_000,
}, async () => {
  const out = tempRun();
  const c = coordinator(out, ['--min-trainers', '2']);
  const url = await c.url();
  const status = (await (await fetch(url.replace('ws://', 'http://') + '/status')).json()) as {
    step: number;
    totalSteps: number;
    trainers: unknown[];
  };
  assert.deepEqual([status.step, status.totalSteps, status.trainers.length], [0, 20, 0]);
  assert.match(await (await fetch(url.replace('ws://', 'http://') + '/')).text(), /<title>DANN coordinator<\/title>/);
  const intruder = trainer(url, 'intruder', 'wrong-token');
  assert.equal(await intruder.exit, 1);
  assert.match(intruder.output, /refused the connection \(HTTP 401: wrong or missing token\)/);
  const [a, b] = [trainer(url, 'a'), trainer(url, 'b')];
  assert.equal(await c.exit, 0, c.output);
  assert.deepEqual(accounting(out), EXACTLY_ONCE);
  assert.match(c.output, /wrong or missing token/);
  assert.match(c.output, /\| paper \| dann \| synth -> mnist \|/);
  // The run ends with its label path exported to ONNX and verified against tfjs.
  assert.match(c.output, /ONNX: .*model\.onnx .*onnxruntime vs tfjs on 512 test images/);
  const sidecar = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')) as {
    verification: { passed: boolean };
    training: { step: number };
  };
  assert.equal(sidecar.verification.passed, true);
  assert.equal(sidecar.training.step, 20);
  assert.ok(statSync(join(out, 'model.onnx')).size > 100_000);
  assert.deepEqual(await Promise.all([a.exit, b.exit]), [0, 0]);
  rmSync(out, { recursive: true });
});

test('trainer:train is coordinator:serve with one trainer: the same weights and metrics from the same settings; both list the same run options', {
  timeout: 240_000,
}, async () => {
  const served = tempRun();
  const c = coordinator(served, ['--min-trainers', '1', '--epochs', '1']);
  const t = trainer(await c.url(), 'only');
  assert.equal(await c.exit, 0, c.output);
  await t.exit;
  // The served run's config.json is a config file: the same run in one process.
  const local = join(served, 'local');
  const r = runScript(TRAIN, ['--config', join(served, 'config.json'), '--backend', 'wasm', '--out', local]);
  assert.equal(await r.exit, 0, r.output);
  const weights = (dir: string) => decodeCheckpoint(readFileSync(join(dir, 'checkpoint.bin'))).weights;
  assert.deepEqual(weights(local), weights(served));
  const lines = (dir: string, type: string) =>
    readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((m) => m.type === type);
  const losses = (dir: string) => lines(dir, 'step').map((m) => [m.step, m.labelLoss, m.domainLoss, m.gradNorm]);
  assert.deepEqual(losses(local), losses(served));
  assert.deepEqual(lines(local, 'epoch'), lines(served, 'epoch'));
  // --usage: every run option, described the same way, in both.
  const usage = async (script: string) => {
    const u = runScript(script, ['--usage']);
    assert.equal(await u.exit, 0);
    return Object.keys(RUN_OPTIONS).map((name) => u.output.split('\n').find((l) => l.startsWith(`  --${name} `)));
  };
  const [trainUsage, serveUsage] = await Promise.all([usage(TRAIN), usage(SERVE)]);
  assert.ok(trainUsage.every(Boolean), trainUsage.join('\n'));
  assert.deepEqual(serveUsage, trainUsage);
  rmSync(served, { recursive: true });
});

test('kill -9 one of three trainers mid-run (bf16 on the wire): the run finishes and each epoch still uses every sample once', {
  timeout: 180_000,
}, async () => {
  const out = tempRun();
  const c = coordinator(out, ['--min-trainers', '2', '--wire-dtype', 'bf16']);
  const url = await c.url();
  const ts = ['a', 'b', 'c'].map((n) => trainer(url, n));
  await until(
    'three trainers in a step',
    () =>
      existsSync(join(out, 'metrics.jsonl')) &&
      readFileSync(join(out, 'metrics.jsonl'), 'utf8').includes('"trainers":3'),
  );
  ts[1].child.kill('SIGKILL');
  assert.equal(await c.exit, 0, c.output);
  assert.match(c.output, /trainer b left \(disconnected\)/);
  assert.doesNotMatch(c.output, /differ from the coordinator's/, 'bf16 updates keep replicas identical');
  assert.deepEqual(accounting(out), EXACTLY_ONCE);
  await Promise.all([ts[0].exit, ts[2].exit]);
  rmSync(out, { recursive: true });
});

test('a stalled trainer (SIGSTOP) misses the step deadline and is dropped; the others finish the run', {
  timeout: 180_000,
}, async () => {
  const out = tempRun();
  const c = coordinator(out, ['--min-trainers', '1', '--step-timeout', '4000']);
  const url = await c.url();
  const ts = [trainer(url, 'a'), trainer(url, 'b')];
  await until(
    'both trainers in a step',
    () =>
      existsSync(join(out, 'metrics.jsonl')) &&
      readFileSync(join(out, 'metrics.jsonl'), 'utf8').includes('"trainers":2'),
  );
  ts[1].child.kill('SIGSTOP');
  await until('the stalled trainer to be dropped', () => /missed the 4000 ms step deadline/.test(c.output), 60_000);
  ts[1].child.kill('SIGKILL');
  assert.equal(await c.exit, 0, c.output);
  assert.deepEqual(accounting(out), EXACTLY_ONCE);
  await ts[0].exit;
  rmSync(out, { recursive: true });
});

test('bad frames, NaN and wrong-length gradients, a control-message flood close only that connection; the run is unaffected', {
  timeout: 180_000,
}, async () => {
  const out = tempRun();
  // Attackers join as trainers too, so one honest trainer must be enough to run steps.
  const c = coordinator(out, ['--min-trainers', '1']);
  const url = await c.url();
  const honest = trainer(url, 'honest');
  const closes: string[] = [];
  // A client that joins, takes its shard, and answers it with poison; then others that send junk.
  const attack = (name: string, onAssign: (ws: WebSocket, a: Assign) => void, junk?: Uint8Array | string) =>
    new Promise<void>((resolve) => {
      const ws = new WebSocket(url, { headers: { authorization: `Bearer ${TOKEN}` }, perMessageDeflate: false });
      ws.on('open', () => {
        ws.send(encodeFrame({ type: 'hello', protocol: PROTOCOL_VERSION, name, backend: 'none', device: 'none' }));
        if (junk !== undefined) ws.send(junk);
        if (name === 'flood')
          for (let i = 0; i < 300; i++) ws.send(encodeFrame({ type: 'checksum', step: 999_999, value: i }));
      });
      ws.on('message', (raw) => {
        const { message } = decodeFrame(raw as Buffer, { maxPayload: 1 << 26 });
        if (message.type === 'assign') onAssign(ws, message);
      });
      ws.on('close', (code, reason) => {
        closes.push(`${name}: ${code} ${reason}`);
        resolve();
      });
      ws.on('error', () => {});
    });
  const gradientOf = (a: Assign, values: Float32Array) =>
    encodeFrame(
      {
        type: 'gradient',
        step: a.step,
        shard: a.shard,
        samples: a.source.length,
        labelLoss: 1,
        domainLoss: 1,
        labelAcc: 0,
        domainAcc: 0,
        computeMs: 1,
      },
      values,
    );
  await Promise.all([
    attack('nan', (ws, a) => ws.send(gradientOf(a, new Float32Array(666792).fill(NaN)))),
    attack('short', (ws, a) => ws.send(gradientOf(a, new Float32Array(10)))),
    attack('truncated', () => {}, encodeFrame({ type: 'leave', code: 'shutdown' }).subarray(0, 20)),
    attack('oversize', () => {}, new Uint8Array(666792 * 4 + (1 << 20) + 16)),
    attack('text', () => {}, 'hello?'),
    attack('flood', () => {}),
  ]);
  assert.equal(await c.exit, 0, c.output);
  assert.equal(await honest.exit, 0);
  assert.deepEqual(accounting(out), EXACTLY_ONCE);
  const byName = Object.fromEntries(closes.map((l) => [l.split(':')[0], l]));
  assert.match(byName.nan, /1008 .*non-finite/);
  assert.match(byName.short, /1008 .*10 values, the model 666792/);
  assert.match(byName.truncated, /1008 .*truncated or padded/);
  assert.match(byName.oversize, /1009/);
  assert.match(byName.text, /1008 text frames/);
  assert.match(byName.flood, /1008 too many control messages/);
  rmSync(out, { recursive: true });
});

test('a killed coordinator resumes from its checkpoint and trainers reconnect on their own', {
  timeout: 240_000,
}, async () => {
  const out = tempRun();
  const port = String(20000 + (process.pid % 20000));
  const first = coordinator(out, [], port);
  const url = await first.url();
  const t = trainer(url, 'patient');
  await until('a checkpoint', () => steps(out) >= 7);
  first.child.kill('SIGKILL');
  await first.exit;
  const saved = decodeCheckpoint(readFileSync(join(out, 'checkpoint.bin'))).step;
  assert.ok(saved >= 3, `checkpoint at step ${saved}`);
  const second = coordinator(out, ['--resume'], port);
  assert.equal(await second.exit, 0, second.output);
  assert.match(second.output, new RegExp(`resumed from .*checkpoint.bin at step ${saved}`));
  // The audit survives the crash: usage counts come from the checkpoint, redone steps are not repeated.
  assert.deepEqual(accounting(out), EXACTLY_ONCE);
  const logged = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; step: number; epoch: number });
  assert.deepEqual(
    logged.filter((l) => l.type === 'step').map((l) => l.step),
    Array.from({ length: 20 }, (_, i) => i),
  );
  assert.deepEqual(
    logged.filter((l) => l.type === 'epoch').map((l) => [l.epoch, l.step]),
    [
      [1, 10],
      [2, 20],
    ],
    'one evaluation line per epoch',
  );
  assert.equal(await t.exit, 0);
  assert.match(t.output, /reconnecting in/);
  rmSync(out, { recursive: true });
});

/** Runs one epoch with a trainer per backend (`late`: one wasm trainer joins mid-run); the last weights and the coordinator's log. */
async function weightsAfter(
  backends: string[],
  late = false,
): Promise<{ w: Float32Array; log: string; trainers: string[] }> {
  const out = tempRun();
  const c = coordinator(out, ['--min-trainers', String(late ? 1 : backends.length), '--epochs', '1']);
  const url = await c.url();
  const ts = backends.map((b, i) => trainer(url, `${b}-${i}`, TOKEN, [], b));
  if (late) {
    await until('a few steps', () => steps(out) >= 3);
    // Hold the early trainer until the late one has joined: otherwise a fast machine finishes the 10 steps
    // before a new trainer process is up, and nothing joins late.
    ts[0].child.kill('SIGSTOP');
    ts.push(trainer(url, 'late'));
    await until('the late trainer to join', () => c.output.includes('trainer late joined'));
    ts[0].child.kill('SIGCONT');
  }
  assert.equal(await c.exit, 0, c.output);
  assert.deepEqual(
    await Promise.all(ts.map((t) => t.exit)),
    ts.map(() => 0),
  );
  const w = decodeCheckpoint(readFileSync(join(out, 'checkpoint.bin'))).weights;
  rmSync(out, { recursive: true });
  return { w, log: c.output, trainers: ts.map((t) => t.output) };
}

/** The largest weight difference, relative to the largest weight. */
function relativeDiff(a: Float32Array, b: Float32Array): number {
  let diff = 0,
    scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]));
  }
  return diff / scale;
}

test('two trainers with batch b each reach the same weights as one trainer with batch 2b; a late joiner stays in sync', {
  timeout: 240_000,
}, async () => {
  const two = await weightsAfter(['wasm', 'wasm']);
  const one = await weightsAfter(['wasm']);
  assert.ok(relativeDiff(one.w, two.w) < 1e-4, `relative weight difference ${relativeDiff(one.w, two.w)}`);
  const late = await weightsAfter(['wasm'], true);
  assert.match(late.log, /trainer late joined \(wasm/);
  assert.doesNotMatch(late.log, /differ from the coordinator's/);
});

const noGpu = await webgpuTestSkip();
if (noGpu) console.log(`# skipping the webgpu trainer test: ${noGpu}`);

test('a webgpu trainer and a wasm trainer in one run: replicas stay identical, and training moves the weights as one wasm trainer with batch 2b does', {
  skip: noGpu,
  timeout: 300_000,
}, async (t) => {
  const mixed = await weightsAfter(['webgpu', 'wasm']);
  const one = await weightsAfter(['wasm']);
  assert.match(mixed.trainers[0], /backend: webgpu on (software )?GPU /);
  assert.match(mixed.log, /trainer webgpu-0 joined \(webgpu on (software )?GPU .*WebGPU on \w+, dawn\.node/);
  // The coordinator compares every replica's weight checksum with its own after step 10.
  assert.doesNotMatch(mixed.log, /differ from the coordinator's/);
  // webgpu's kernels sum in another order than wasm's (~1e-6 relative per gradient), and Adam magnifies that in
  // coordinates whose gradient is near zero: compare what training moved, the weight change from the start, in L2.
  const w0 = DannNetwork.initialWeights(PRESETS.paper, 1);
  let diff = 0,
    norm = 0;
  for (let i = 0; i < w0.length; i++) {
    diff += (mixed.w[i] - one.w[i]) ** 2;
    norm += (one.w[i] - w0[i]) ** 2;
  }
  const off = Math.sqrt(diff / norm);
  t.diagnostic(`the mixed run's weight change is ${off.toExponential(2)} (L2, relative) from one wasm trainer's`);
  assert.ok(off < 1e-3, `relative difference of the weight changes ${off}`);
});

/** A self-signed certificate for 127.0.0.1 (its own CA), written as PEM files into `dir`. */
function selfSigned(dir: string, name: string): { cert: string; key: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  const subject = [{ name: 'commonName', value: `dann test ${name}` }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true },
    { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
  ]);
  cert.sign(
    forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()),
    forge.md.sha256.create(),
  );
  const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  writeFileSync(files.cert, forge.pki.certificateToPem(cert));
  writeFileSync(files.key, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return files;
}

test('over wss:// with a certificate made here: a trainer that trusts it trains, one with another CA is refused in one sentence; ws:// off loopback needs --insecure', {
  timeout: 180_000,
}, async () => {
  const out = tempRun();
  const good = selfSigned(out, 'coordinator');
  const other = selfSigned(out, 'stranger');
  const open = runScript(SERVE, ['--host', '0.0.0.0', '--out', out]);
  assert.equal(await open.exit, 1);
  assert.match(
    open.output,
    /refusing to serve ws:\/\/ on 0\.0\.0\.0: the token and the gradients would cross the network in clear text; pass --tls-cert and --tls-key, or --insecure/,
  );
  const c = coordinator(out, ['--min-trainers', '1', '--epochs', '1', '--tls-cert', good.cert, '--tls-key', good.key]);
  const url = await c.url();
  assert.match(url, /^wss:\/\/127\.0\.0\.1:/);
  const wrong = trainer(url, 'wrong-ca', TOKEN, ['--ca', other.cert]);
  assert.equal(await wrong.exit, 1);
  assert.match(
    wrong.output,
    /error: the coordinator's TLS certificate is not trusted \(.*\); pass --ca with the certificate the coordinator serves or the CA that signed it\./,
  );
  const t = trainer(url, 'trusting', TOKEN, ['--ca', good.cert]);
  assert.equal(await c.exit, 0, c.output);
  assert.equal(await t.exit, 0, t.output);
  assert.match(c.output, /status page https:\/\/127\.0\.0\.1:/);
  assert.match(c.output, /trainer trusting joined/);
  assert.doesNotMatch(c.output, /wrong-ca joined/);
  rmSync(out, { recursive: true });
});

test('a relay (coordinator:serve --upstream) with two trainers behind it and one trainer beside it: the run finishes, every sample once per epoch; a relay with a wrong token or with run options of its own stops in one sentence', {
  timeout: 180_000,
}, async () => {
  const out = tempRun();
  const c = coordinator(out, ['--min-trainers', '2']);
  const url = await c.url();
  const relay = (name: string, extra: string[]) =>
    runScript(SERVE, ['--upstream', url, '--name', name, '--port', '0', '--out', join(out, name), ...extra]);
  const own = relay('own-run', ['--token', TOKEN, '--epochs', '3']);
  assert.equal(await own.exit, 1);
  assert.match(
    own.output,
    /--epochs is the coordinator's to set: a relay \(--upstream\) trains the run of the coordinator above\./,
  );
  const wrong = relay('wrong-token', ['--token', 'not-the-token']);
  assert.equal(await wrong.exit, 1);
  assert.match(wrong.output, /error: the coordinator refused the connection \(HTTP 401: wrong or missing token\)\./);
  const r = relay('rack', ['--token', TOKEN, '--min-trainers', '2', '--step-timeout', '30000']);
  const relayUrl = await until('the relay to listen', () => /relay listening on (\S+)/.exec(r.output)?.[1], 120_000);
  const below = [trainer(relayUrl, 'below-0'), trainer(relayUrl, 'below-1')];
  const beside = trainer(url, 'beside');
  await until('both trainers below to join', () =>
    ['below-0', 'below-1'].every((n) => r.output.includes(`trainer ${n} joined`)),
  );
  const status = (await (await fetch(`${relayUrl.replace('ws://', 'http://')}/status`)).json()) as {
    relay: string;
    trainers: { name: string }[];
  };
  assert.equal(status.relay, 'rack');
  assert.deepEqual(status.trainers.map((t) => t.name).sort(), ['below-0', 'below-1']);
  assert.equal(await c.exit, 0, c.output);
  assert.equal(await r.exit, 0, r.output);
  assert.deepEqual(await Promise.all([...below, beside].map((p) => p.exit)), [0, 0, 0]);
  assert.match(c.output, /trainer rack joined \(relay on/);
  assert.match(r.output, /trainer below-0 joined/);
  assert.match(r.output, /trainer below-1 joined/);
  assert.doesNotMatch(c.output + r.output, /differ/);
  assert.deepEqual(accounting(out), EXACTLY_ONCE);
  rmSync(out, { recursive: true });
});
