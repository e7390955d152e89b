import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP, type Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { writeFileAtomic } from '@dann/data';
import { selectBackend } from '@dann/backend';
import {
  AGGREGATES,
  AppendLog,
  Coordinator,
  DEFAULT_CLIP_FACTOR,
  loadRunData,
  RunFiles,
  warmStartWeights,
  type Aggregate,
} from '@dann/engine';
import { RUN_OPTIONS, resolveRun, runFlags } from '@dann/training';
import { nonNegative, oneOf, parseCommand, positiveInt, readTokenFile, runMain } from '@dann/cli';
import {
  decodeFrame,
  ProtocolError,
  WIRE_DTYPES,
  encodeFrame,
  type Frame,
  type ErrorCode,
  type Hello,
  type WireDtype,
} from '@dann/protocol';
import { ConnectionGate, RateLimit, RefusalLog, connectionLimits, tokenMatches } from './guard.ts';
import { statusPage } from './status.ts';

/** A socket must present the token (WebSocket upgrade) or finish its HTTP request within this time. */
const UPGRADE_DEADLINE_MS = 10_000;
const PING_INTERVAL_MS = 5_000;
/** Largest header a trainer's frame may have (its longest message is hello: three short strings). */
const TRAINER_HEADER_BYTES = 1 << 16;

const command = {
  name: 'serve',
  summary: 'Runs the coordinator of a synchronous distributed training run; trainers connect with trainer:start.',
  usage:
    'npx nx run coordinator:serve -- [--config configs/NAME.json] [--method dann --source synth ...] --min-trainers 2 --out runs/NAME',
  options: {
    ...RUN_OPTIONS,
    'min-trainers': { type: 'string', description: 'trainers needed before steps run', default: '1' },
    'step-timeout': {
      type: 'string',
      description: 'ms a trainer may take for its shard before it is dropped',
      default: '60000',
    },
    aggregate: {
      type: 'string',
      description: `how shard gradients are combined: ${AGGREGATES.join(' | ')} (median/trimmed-mean need 3+ trainers)`,
      default: 'clipped-mean',
    },
    'clip-factor': {
      type: 'string',
      description:
        "a shard gradient whose norm exceeds this many times the step's median is recomputed by the other trainers",
      default: String(DEFAULT_CLIP_FACTOR),
    },
    'max-outlier-steps': {
      type: 'string',
      description: 'drop a trainer whose gradient is an outlier in this many consecutive steps (0 = never)',
      default: '3',
    },
    'max-connections': {
      type: 'string',
      description: 'open sockets at most (kept below the open-file limit)',
      default: '1024',
    },
    'wire-dtype': {
      type: 'string',
      description: `gradient encoding on the wire: ${WIRE_DTYPES.join(' | ')}`,
      default: 'f32',
    },
    host: {
      type: 'string',
      description: 'address to bind (other than loopback only with TLS, or --insecure)',
      default: '127.0.0.1',
    },
    'tls-cert': {
      type: 'string',
      description:
        'PEM certificate (chain): serve wss:// and https:// (trainers pass --ca when it is not publicly trusted)',
    },
    'tls-key': { type: 'string', description: 'PEM private key of --tls-cert' },
    insecure: {
      type: 'boolean',
      description: 'serve ws:// on a non-loopback --host: the token and gradients cross the network in clear text',
    },
    port: { type: 'string', description: 'port (0 = any free port)', default: '8765' },
    token: {
      type: 'string',
      description:
        'token trainers must present (visible in ps: prefer --token-file or $DANN_TOKEN; default: a random one written to OUT/token)',
    },
    'token-file': { type: 'string', description: 'read the token from this file' },
    resume: { type: 'boolean', description: 'continue from OUT/checkpoint.bin' },
    out: { type: 'string', description: 'run directory', default: 'runs/distributed' },
  },
} as const;

runMain(async () => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const v = args.values;
  const out = v.out;
  const { settings, config: run } = resolveRun(runFlags(v, args.given));
  const tls = tlsOptions(v['tls-cert'], v['tls-key'], v.host, Boolean(v.insecure));
  mkdirSync(out, { recursive: true });
  const logFile = new AppendLog(join(out, 'coordinator.log'), (line) => console.error(line));
  const log = (line: string) => {
    console.log(line);
    logFile.append(`${new Date().toISOString()} ${line}\n`);
  };
  const token = coordinatorToken(v.token, v['token-file'], out, log);
  const wireDtype = oneOf('wire-dtype', v['wire-dtype'], WIRE_DTYPES) as WireDtype;
  const stepTimeoutMs = positiveInt('step-timeout', v['step-timeout']);
  const aggregate = oneOf('aggregate', v.aggregate, AGGREGATES) as Aggregate;
  const clipFactor = nonNegative('clip-factor', v['clip-factor']);
  if (clipFactor < 1)
    throw new Error(`--clip-factor must be at least 1 (a median shard would be an outlier), got ${v['clip-factor']}.`);
  const minTrainers = positiveInt('min-trainers', v['min-trainers']);
  const maxOutlierSteps = nonNegative('max-outlier-steps', v['max-outlier-steps']);
  const resume = Boolean(v.resume);
  // The coordinator evaluates its replica after each epoch (and exports the model) on the fastest cpu backend.
  await selectBackend({ backend: 'auto', log: () => {} });
  const data = loadRunData(run.data, { log });
  const files = new RunFiles({
    out,
    run,
    settings,
    data,
    resume,
    log,
    how: { distributed: true, minTrainers, aggregate, clipFactor, wireDtype },
  });
  let finished!: () => void;
  let failed!: (err: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    finished = resolve;
    failed = reject;
  });
  const coordinator = new Coordinator({
    run,
    settings,
    checksumEvery: 10,
    counts: { source: data.sourceTrain.count, target: data.targetTrain.count },
    initialWeights: resume ? undefined : warmStartWeights(run, log),
    minTrainers,
    stepTimeoutMs,
    aggregate,
    clipFactor,
    maxOutlierSteps,
    resyncIntervalMs: 10_000,
    wireDtype,
    out,
    resume,
    log,
    onDone: () => finished(),
    onStep: (m): Promise<void> => files.step(m, coordinator),
    onError: failed,
  });
  if (resume) files.resumeAt(coordinator.step);

  // Largest frame a trainer may send: a gradient (header + one float per parameter) with room to spare.
  const maxPayload = coordinator.paramCount * 4 + (1 << 20);
  // Most bytes queued to one peer (a state frame is up to 4 floats per parameter): a peer that does not read is dropped.
  const maxBuffered = 2 * coordinator.paramCount * 16 + (16 << 20);
  const gate = new ConnectionGate(connectionLimits(positiveInt('max-connections', v['max-connections'])));
  const refusals = new RefusalLog(log);
  const limits = {
    headersTimeout: UPGRADE_DEADLINE_MS,
    requestTimeout: UPGRADE_DEADLINE_MS,
    connectionsCheckingInterval: 1000,
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET' && req.url === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          step: coordinator.step,
          totalSteps: coordinator.totalSteps,
          epoch: coordinator.epoch,
          done: coordinator.done,
          trainers: coordinator.trainers(),
          removed: coordinator.removed,
          aggregate,
          connections: { ...gate.counts, refused: refusals.total },
          metrics: coordinator.metrics.slice(-500),
          epochs: coordinator.epochsExactlyOnce(),
        }),
      );
    } else if (req.method === 'GET' && (req.url === '/' || req.url === '/index.html')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(statusPage());
    } else {
      res.writeHead(404).end();
    }
  };
  const server = tls
    ? createHttpsServer({ ...limits, ...tls, handshakeTimeout: UPGRADE_DEADLINE_MS }, handler)
    : createHttpServer(limits, handler);
  // Sockets idle before they upgrade (or between HTTP requests) are closed; ws clears this on upgrade.
  server.timeout = UPGRADE_DEADLINE_MS;
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload });
  // Every socket counts against the limits until it presents the token; one that neither does so nor
  // finishes an HTTP request within the deadline is closed, and a new one evicts the oldest idle ones.
  // Keyed by the peer's address and port: with TLS the upgrade sees the TLS socket, not the raw one.
  const sockets = new Map<string, Socket>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '?';
    const key = `${address}:${socket.remotePort}`;
    const evict = gate.admit(key, address);
    if (evict === null) {
      refusals.refused(
        'over the connection limit',
        `${address}: ${gate.limits.total} trainers and pages are connected already`,
      );
      return void socket.destroy();
    }
    for (const victim of evict) {
      refusals.refused(
        'evicted while idle',
        `${victim}: closed an unauthenticated socket to make room (${gate.limits.pending} at most, ${gate.limits.pendingPerAddress} per address)`,
      );
      sockets.get(victim)?.destroy();
      sockets.delete(victim);
    }
    sockets.set(key, socket);
    socket.once('close', () => {
      gate.closed(key);
      if (sockets.get(key) === socket) sockets.delete(key);
    });
  });
  server.on('error', (err) => log(`server error (survived): ${err.message}`));
  server.on('upgrade', (req, socket, head) => {
    if (!tokenMatches(token.value, req.headers.authorization)) {
      refusals.refused('wrong token', `${req.socket.remoteAddress}: wrong or missing token`);
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n');
      return;
    }
    gate.authenticated(`${req.socket.remoteAddress}:${req.socket.remotePort}`);
    wss.handleUpgrade(req, socket, head, (ws) => connection(ws));
  });

  function connection(ws: WebSocket): void {
    let id: number | null = null;
    const limit = new RateLimit(50, 100);
    const who = () => (id === null ? '(no hello)' : coordinator.nameOf(id));
    const peer = {
      send: (b: Uint8Array) => {
        if (ws.readyState !== ws.OPEN) return;
        if (ws.bufferedAmount + b.length > maxBuffered) {
          log(`trainer ${who()} does not read: ${(ws.bufferedAmount / 2 ** 20).toFixed(0)} MiB queued; closing it`);
          return void ws.terminate(); // 'close' takes it out of the run
        }
        ws.send(b);
      },
      close: (code: number, reason: string) => ws.close(code, reason),
    };
    const refuse = (why: string, code: ErrorCode = 'refused') => {
      if (ws.readyState === ws.OPEN) ws.send(encodeFrame({ type: 'error', code, message: why }));
      ws.close(1008, why.slice(0, 120));
      // Out of the run at once: nothing more is assigned to it while the close handshake runs.
      if (id !== null) coordinator.leave(id, `refused: ${why}`);
      id = null;
    };
    const helloTimer = setTimeout(() => id === null && refuse('no hello within 10 s.'), 10_000);
    // A peer silent for longer than a shard may take (the step deadline: a trainer blocked in a long step, a GPU
    // compiling its kernels, cannot answer pings meanwhile) is gone. When this process was busy (the per-epoch
    // evaluation holds the event loop for seconds), the pongs may still be unread: ask again.
    const silenceMs = Math.max(2 * PING_INTERVAL_MS, stepTimeoutMs);
    let lastTick = Date.now();
    let lastPong = lastTick;
    const ping = setInterval(() => {
      const now = Date.now();
      const stalled = now - lastTick > 1.5 * PING_INTERVAL_MS;
      lastTick = now;
      if (!stalled && now - lastPong > silenceMs) return ws.terminate();
      ws.ping();
    }, PING_INTERVAL_MS);
    ws.on('pong', () => (lastPong = Date.now()));
    const handle = (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return refuse('text frames are not part of the protocol.', 'bad-frame');
      let frame: Frame;
      try {
        frame = decodeFrame(data, { maxPayload: coordinator.paramCount, maxHeaderBytes: TRAINER_HEADER_BYTES });
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        refusals.refused('bad frame', `trainer ${who()}: ${err.message}`);
        return refuse(err.message, 'bad-frame');
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
        refusals.refused(`refused ${frame.message.type}`, `trainer ${who()}: ${why}`);
        if (frame.message.type === 'gradient') refuse(why);
        else peer.send(encodeFrame({ type: 'error', code: 'refused', message: why }));
      }
    };
    ws.on('message', (data, isBinary) => {
      if (ws.readyState !== ws.OPEN) return; // refused and closing
      // Whatever one peer's message does, only that peer's connection ends.
      try {
        handle(data as Buffer, isBinary);
      } catch (err) {
        log(
          `trainer ${who()}: closing the connection after an internal error on its message: ${(err as Error).message}`,
        );
        refuse('internal error on this message.');
      }
    });
    ws.on('close', () => {
      clearTimeout(helloTimer);
      clearInterval(ping);
      if (id !== null) coordinator.leave(id, 'disconnected');
    });
    ws.on('error', (err) => log(`trainer ${who()}: socket error: ${err.message}`));
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(err.code === 'EADDRINUSE' ? `port ${v.port} on ${v.host} is in use; pass --port.` : err.message),
      ),
    );
    server.listen(Number(v.port), v.host, resolve);
  });
  const address = server.address() as { port: number };
  const url = `${tls ? 'wss' : 'ws'}://${v.host}:${address.port}`;
  writeFileSync(join(out, 'coordinator.json'), JSON.stringify({ url, pid: process.pid }) + '\n');
  log(`coordinator listening on ${url} (status page ${tls ? 'https' : 'http'}://${v.host}:${address.port}/)`);
  log(
    `start trainers with: npx nx run trainer:start -- --coordinator ${url} ${token.file ? `--token-file ${token.file}` : '(token from $DANN_TOKEN)'}`,
  );
  const { method, preset, batchSize } = run.train;
  log(
    `${method} ${run.data.source} -> ${run.data.target}, ${preset}: ${coordinator.paramCount} parameters, ${coordinator.totalSteps} steps of ${batchSize}`,
  );
  coordinator.maybeStartStep();
  await done;
  writeFileSync(join(out, 'accounting.json'), JSON.stringify(coordinator.epochsExactlyOnce()) + '\n');
  wss.close();
  server.close();
  await files.finish(coordinator);
});

/**
 * The run's token, never printed: from --token, --token-file or $DANN_TOKEN, else a random one written
 * owner-only to OUT/token. Returns the file trainers on this machine can read it from, when there is one.
 */
function coordinatorToken(
  flag: string | undefined,
  file: string | undefined,
  out: string,
  log: (line: string) => void,
): { value: string; file?: string } {
  if (flag !== undefined) {
    log('--token on the command line is visible to other users (ps); prefer --token-file or $DANN_TOKEN');
    return { value: flag };
  }
  if (file !== undefined) return { value: readTokenFile(file), file };
  if (process.env.DANN_TOKEN) return { value: process.env.DANN_TOKEN };
  const made = join(out, 'token');
  writeFileAtomic(made, Buffer.from(`${randomBytes(16).toString('hex')}\n`), 0o600);
  return { value: readTokenFile(made), file: made };
}

const LOOPBACK = new Set(['localhost', '::1']);

/**
 * The TLS material for wss:// and https://, checked before anything else starts; null for plain ws://,
 * which only a loopback --host gets without --insecure.
 */
function tlsOptions(
  certFile: string | undefined,
  keyFile: string | undefined,
  host: string,
  insecure: boolean,
): { cert: Buffer; key: Buffer } | null {
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new Error('pass both --tls-cert and --tls-key (a certificate and its private key).');
  if (certFile === undefined || keyFile === undefined) {
    const loopback = LOOPBACK.has(host) || (isIP(host) === 4 && host.startsWith('127.'));
    if (!loopback && !insecure) {
      throw new Error(
        `refusing to serve ws:// on ${host}: the token and the gradients would cross the network in clear text; pass --tls-cert and --tls-key, or --insecure on a network you trust.`,
      );
    }
    return null;
  }
  const read = (flag: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`cannot read --${flag} ${file} (${(err as NodeJS.ErrnoException).code ?? err}).`);
    }
  };
  const material = { cert: read('tls-cert', certFile), key: read('tls-key', keyFile) };
  try {
    createSecureContext(material);
  } catch (err) {
    throw new Error(
      `--tls-cert ${certFile} and --tls-key ${keyFile} are not a usable certificate and key (${(err as Error).message}).`,
    );
  }
  return material;
}
