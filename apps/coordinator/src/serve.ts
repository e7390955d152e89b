import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { DATASETS, loadDataset, type DatasetName } from '@dann/data';
import { METHODS, OPTIMIZERS, PRESET_NAMES, DannNetwork, architectureOf, evaluate, exportOnnx, selectBackend, verificationImages, type Method, type OptimizerKind, type PresetName } from '@dann/models';
import { decodeFrame, nonNegative, oneOf, parseCommand, positiveInt, ProtocolError, runMain, WIRE_DTYPES, encodeFrame, type Hello, type WireDtype } from '@dann/protocol';
import { Coordinator, type RunSpec } from './coordinator.ts';
import { statusPage } from './status.ts';

const command = {
  name: 'serve',
  summary: 'Runs the coordinator of a synchronous distributed training run; trainers connect with trainer:start.',
  usage: 'npx nx run coordinator:serve -- --method dann --source synth --target mnist --epochs 5 --min-trainers 2 --out runs/NAME',
  options: {
    method: { type: 'string', description: METHODS.join(' | '), default: 'dann' },
    source: { type: 'string', description: `labelled domain: ${DATASETS.join(' | ')}`, default: 'synth' },
    target: { type: 'string', description: `unlabelled domain: ${DATASETS.join(' | ')}`, default: 'mnist' },
    preset: { type: 'string', description: PRESET_NAMES.join(' | '), default: 'paper' },
    epochs: { type: 'string', description: 'passes over the source training set', default: '5' },
    'batch-size': { type: 'string', description: 'global source batch per step, split over the trainers', default: '64' },
    optimizer: { type: 'string', description: OPTIMIZERS.join(' | '), default: 'adam' },
    lr: { type: 'string', description: 'initial learning rate (paper schedule)', default: '0.0005' },
    'lambda-max': { type: 'string', description: 'ceiling of the GRL weight schedule', default: '1' },
    'clip-norm': { type: 'string', description: 'clip the averaged gradient to this L2 norm (0 = off)', default: '5' },
    seed: { type: 'string', description: 'seed of initialisation, data order and dropout', default: '1' },
    limit: { type: 'string', description: 'use only N training images per domain' },
    'val-count': { type: 'string', description: 'source training images held out for validation', default: '1000' },
    'eval-limit': { type: 'string', description: 'test images per domain in the final table', default: '2000' },
    'min-trainers': { type: 'string', description: 'trainers needed before steps run', default: '1' },
    'step-timeout': { type: 'string', description: 'ms a trainer may take for its shard before it is dropped', default: '60000' },
    'checkpoint-every': { type: 'string', description: 'steps between checkpoints', default: '50' },
    'wire-dtype': { type: 'string', description: `gradient encoding on the wire: ${WIRE_DTYPES.join(' | ')}`, default: 'f32' },
    host: { type: 'string', description: 'address to bind', default: '127.0.0.1' },
    port: { type: 'string', description: 'port (0 = any free port)', default: '8765' },
    token: { type: 'string', description: 'token trainers must present (default: $DANN_TOKEN or a random one, printed)' },
    resume: { type: 'boolean', description: 'continue from OUT/checkpoint.bin' },
    out: { type: 'string', description: 'run directory', default: 'runs/distributed' },
  },
} as const;

const dataset = (name: string, value: string): DatasetName => oneOf(name, value, DATASETS);

/** Compares the presented token with the expected one in constant time (over their SHA-256). */
export function tokenMatches(expected: string, header: string | undefined): boolean {
  const presented = header?.startsWith('Bearer ') ? header.slice(7) : '';
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(expected), h(presented)) && presented.length > 0;
}

/** A token bucket: `rate` control messages per second, bursts up to `burst`. */
class RateLimit {
  private tokens: number;
  private last = Date.now();
  constructor(private readonly rate: number, private readonly burst: number) {
    this.tokens = burst;
  }
  take(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}

runMain(async () => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const v = args.values;
  const out = v.out;
  mkdirSync(out, { recursive: true });
  const logFile = join(out, 'coordinator.log');
  const log = (line: string) => {
    console.log(line);
    appendFileSync(logFile, `${new Date().toISOString()} ${line}\n`);
  };
  const source = dataset('source', v.source), target = dataset('target', v.target);
  const limit = v.limit === undefined ? undefined : positiveInt('limit', v.limit);
  const valCount = nonNegative('val-count', v['val-count']);
  const sourceAll = loadDataset(source, 'train', { limit, log });
  const targetAll = loadDataset(target, 'train', { limit, log });
  const val = Math.min(valCount, Math.floor(sourceAll.count / 5));
  const spec: RunSpec = {
    train: {
      preset: oneOf('preset', v.preset, PRESET_NAMES) as PresetName, method: oneOf('method', v.method, METHODS) as Method,
      epochs: positiveInt('epochs', v.epochs), batchSize: positiveInt('batch-size', v['batch-size']),
      optimizer: { kind: oneOf('optimizer', v.optimizer, OPTIMIZERS) as OptimizerKind, clipNorm: nonNegative('clip-norm', v['clip-norm']) },
      lr: nonNegative('lr', v.lr), lrSchedule: 'paper', lambdaMax: nonNegative('lambda-max', v['lambda-max']), lambdaGamma: 10, domainWeight: 1,
      seed: positiveInt('seed', v.seed),
    },
    data: { source, target, limit, valCount: val },
    checksumEvery: 10,
  };
  const token = v.token ?? process.env.DANN_TOKEN ?? randomBytes(16).toString('hex');
  const wireDtype = oneOf('wire-dtype', v['wire-dtype'], WIRE_DTYPES) as WireDtype;
  const stepTimeoutMs = positiveInt('step-timeout', v['step-timeout']);
  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));
  if (!v.resume) writeFileSync(join(out, 'metrics.jsonl'), '');
  const coordinator = new Coordinator({
    spec, counts: { source: sourceAll.count - val, target: targetAll.count }, minTrainers: positiveInt('min-trainers', v['min-trainers']),
    stepTimeoutMs, checkpointEvery: positiveInt('checkpoint-every', v['checkpoint-every']), wireDtype, out, resume: Boolean(v.resume), log,
    onDone: () => finished(),
    onStep: (m) => appendFileSync(join(out, 'metrics.jsonl'), JSON.stringify({ type: 'step', ...m }) + '\n'),
  });
  writeFileSync(join(out, 'config.json'), JSON.stringify({ options: { source, target, method: spec.train.method }, train: spec.train, data: spec.data, distributed: true }, null, 2) + '\n');

  // Largest frame a trainer may send: a gradient (header + one float per parameter) with room to spare.
  const maxPayload = coordinator.paramCount * 4 + (1 << 20);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET' && req.url === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        step: coordinator.step, totalSteps: coordinator.totalSteps, epoch: coordinator.epoch, done: coordinator.done,
        trainers: coordinator.trainers(), metrics: coordinator.metrics.slice(-500), epochs: coordinator.epochsExactlyOnce(),
      }));
    } else if (req.method === 'GET' && (req.url === '/' || req.url === '/index.html')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(statusPage());
    } else {
      res.writeHead(404).end();
    }
  });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload });
  server.on('upgrade', (req, socket, head) => {
    if (!tokenMatches(token, req.headers.authorization)) {
      log(`refused a connection from ${req.socket.remoteAddress}: wrong or missing token`);
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => connection(ws));
  });

  function connection(ws: WebSocket): void {
    let id: number | null = null;
    let alive = true;
    const limit = new RateLimit(50, 100);
    const peer = { send: (b: Uint8Array) => ws.send(b), close: (code: number, reason: string) => ws.close(code, reason) };
    const refuse = (why: string) => {
      if (ws.readyState === ws.OPEN) ws.send(encodeFrame({ type: 'error', message: why }));
      ws.close(1008, why.slice(0, 120));
      // Out of the run at once: nothing more is assigned to it while the close handshake runs.
      if (id !== null) coordinator.leave(id, `refused: ${why}`);
      id = null;
    };
    const helloTimer = setTimeout(() => id === null && refuse('no hello within 10 s.'), 10_000);
    const ping = setInterval(() => {
      if (!alive) return ws.terminate();
      alive = false;
      ws.ping();
    }, 5_000);
    ws.on('pong', () => (alive = true));
    ws.on('message', (data, isBinary) => {
      if (ws.readyState !== ws.OPEN) return; // refused and closing
      if (!isBinary) return refuse('text frames are not part of the protocol.');
      let frame;
      try {
        frame = decodeFrame(data as Buffer, { maxPayload: coordinator.paramCount });
      } catch (err) {
        if (err instanceof ProtocolError) {
          log(`trainer ${id ?? '(no hello)'}: refused a frame: ${err.message}`);
          return refuse(err.message);
        }
        throw err;
      }
      if (!frame.payload && !limit.take()) return refuse('too many control messages.');
      if (id === null) {
        if (frame.message.type !== 'hello') return refuse('the first message must be hello.');
        clearTimeout(helloTimer);
        id = coordinator.join(frame.message as Hello, peer);
        return;
      }
      const why = coordinator.receive(id, frame);
      if (why) {
        log(`trainer ${id}: refused ${frame.message.type}: ${why}`);
        if (frame.message.type === 'gradient') refuse(why);
        else ws.send(encodeFrame({ type: 'error', message: why }));
      }
    });
    ws.on('close', () => {
      clearTimeout(helloTimer);
      clearInterval(ping);
      if (id !== null) coordinator.leave(id, 'disconnected');
    });
    ws.on('error', (err) => log(`trainer ${id ?? '(no hello)'}: socket error: ${err.message}`));
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(err.code === 'EADDRINUSE' ? `port ${v.port} on ${v.host} is in use; pass --port.` : err.message)));
    server.listen(Number(v.port), v.host, resolve);
  });
  const address = server.address() as { port: number };
  const url = `ws://${v.host}:${address.port}`;
  writeFileSync(join(out, 'coordinator.json'), JSON.stringify({ url, pid: process.pid }) + '\n');
  log(`coordinator listening on ${url} (status page http://${v.host}:${address.port}/)`);
  log(`token: ${token}`);
  log(`start trainers with: npx nx run trainer:start -- --coordinator ${url} --token ${token}`);
  log(`${spec.train.method} ${source} -> ${target}, ${spec.train.preset}: ${coordinator.paramCount} parameters, ${coordinator.totalSteps} steps of ${spec.train.batchSize}`);
  coordinator.maybeStartStep();
  await done;
  writeFileSync(join(out, 'accounting.json'), JSON.stringify(coordinator.epochsExactlyOnce()) + '\n');
  wss.close();
  server.close();
  // Final table on the test sets.
  await selectBackend({ backend: 'auto', log: () => {} });
  const net = new DannNetwork(architectureOf(spec.train), coordinator.weights);
  const evalLimit = positiveInt('eval-limit', v['eval-limit']);
  const s = evaluate(net, loadDataset(source, 'test', { limit: evalLimit }));
  const t = evaluate(net, loadDataset(target, 'test', { limit: evalLimit }));
  net.dispose();
  const table = `| network | method | pair | source acc | target acc |\n| --- | --- | --- | --- | --- |\n| ${spec.train.preset} | ${spec.train.method} | ${source} -> ${target} | ${s.accuracy.toFixed(4)} | ${t.accuracy.toFixed(4)} |`;
  writeFileSync(join(out, 'results.md'), `${table}\n`);
  log(`\n${table}\n\nfull evaluation and plots: npx nx run tools:evaluate -- ${out}; npx nx run tools:plot -- ${out}`);
  // The label path as ONNX, verified against tfjs on real test images of both domains.
  const exported = await exportOnnx({
    arch: architectureOf(spec.train), weights: coordinator.weights, file: join(out, 'model.onnx'),
    training: { source, target, method: spec.train.method, network: spec.train.preset, step: coordinator.totalSteps },
    accuracy: { source: s.accuracy, target: t.accuracy, testImages: Math.min(s.count, t.count) },
    verify: verificationImages([source, target], 256),
  });
  const check = exported.sidecar.verification;
  log(`ONNX: ${exported.file} (${(exported.bytes / 1024).toFixed(0)} KiB; onnxruntime vs tfjs on ${check.count} test images: max |Δprob| ${check.maxAbsDiff.toExponential(1)}, same top-1); metadata ${exported.sidecarFile}`);
  log(`classify images: npx nx run edge-demo:classify -- --model ${exported.file} digit.png; draw digits: npx nx run edge-demo:serve -- --model ${exported.file}`);
});
