import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '@dann/data';
import { selectBackend } from '@dann/backend';
import {
  AGGREGATES,
  AppendLog,
  connectUpstream,
  Coordinator,
  DEFAULT_CLIP_FACTOR,
  loadRunData,
  Relay,
  RunFiles,
  warmStartWeights,
  type Aggregate,
} from '@dann/engine';
import { RUN_OPTIONS, resolveRun, runFlags } from '@dann/training';
import {
  nonNegative,
  oneOf,
  parseCommand,
  positiveInt,
  presentedToken,
  readCaFile,
  readTokenFile,
  runMain,
} from '@dann/cli';
import { WIRE_DTYPES, type WireDtype } from '@dann/protocol';
import { serveTrainers, type ServeOptions } from './trainers.ts';

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
    upstream: {
      type: 'string',
      description:
        "ws(s)://HOST:PORT of a coordinator: serve as its relay (a reduction-tree node), which splits each shard it is assigned over the trainers that connect here and sends one combined gradient up; the run (its options) is the coordinator's, the token the same",
    },
    ca: { type: 'string', description: 'PEM certificate(s) to trust for a wss:// --upstream' },
    name: {
      type: 'string',
      description: 'how the coordinator above lists this relay',
      default: `relay-${hostname()}-${process.pid}`,
    },
    out: { type: 'string', description: 'run directory (a relay: runs/NAME)', default: 'runs/distributed' },
  },
} as const;

runMain(async () => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const v = args.values;
  // A relay beside a coordinator in one checkout must not write over the coordinator's run folder.
  const out = v.upstream !== undefined && !args.given.has('out') ? join('runs', v.name) : v.out;
  const tls = tlsOptions(v['tls-cert'], v['tls-key'], v.host, Boolean(v.insecure));
  const stepTimeoutMs = positiveInt('step-timeout', v['step-timeout']);
  const policy = {
    minTrainers: positiveInt('min-trainers', v['min-trainers']),
    stepTimeoutMs,
    aggregate: oneOf('aggregate', v.aggregate, AGGREGATES) as Aggregate,
    clipFactor: nonNegative('clip-factor', v['clip-factor']),
    maxOutlierSteps: nonNegative('max-outlier-steps', v['max-outlier-steps']),
    resyncIntervalMs: 10_000,
  };
  if (policy.clipFactor < 1)
    throw new Error(`--clip-factor must be at least 1 (a median shard would be an outlier), got ${v['clip-factor']}.`);
  const serving = {
    tls,
    host: v.host,
    port: v.port,
    stepTimeoutMs,
    maxConnections: positiveInt('max-connections', v['max-connections']),
    out,
  };
  if (v.upstream !== undefined) {
    const own = [...args.given].filter(
      (n) => n in RUN_OPTIONS || n === 'config' || n === 'resume' || n === 'wire-dtype',
    );
    if (own.length)
      throw new Error(
        `--${own[0]} is the coordinator's to set: a relay (--upstream) trains the run of the coordinator above.`,
      );
    if (v.ca !== undefined && !v.upstream.startsWith('wss://'))
      throw new Error(`--ca is for a wss:// --upstream; ${v.upstream} is not one.`);
    const token = presentedToken(v.token, v['token-file']);
    if (!token)
      throw new Error(
        "a relay presents the run's token above and asks it of its trainers: pass --token-file or set DANN_TOKEN.",
      );
    return relay({
      ...policy,
      ...serving,
      url: v.upstream,
      ca: v.ca === undefined ? undefined : readCaFile('ca', v.ca),
      token,
      name: v.name,
      log: runLog(out, 'relay.log'),
    });
  }
  if (v.ca !== undefined) throw new Error("--ca is for a relay's wss:// --upstream.");
  const { settings, config: run } = resolveRun(runFlags(v, args.given));
  const log = runLog(out, 'coordinator.log');
  const token = coordinatorToken(v.token, v['token-file'], out, log);
  const wireDtype = oneOf('wire-dtype', v['wire-dtype'], WIRE_DTYPES) as WireDtype;
  const { minTrainers, aggregate, clipFactor } = policy;
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
    ...policy,
    wireDtype,
    out,
    resume,
    log,
    onDone: () => finished(),
    onStep: (m): Promise<void> => files.step(m, coordinator),
    onError: failed,
  });
  if (resume) files.resumeAt(coordinator.step);

  const server = await serveTrainers(coordinator, {
    ...serving,
    paramCount: coordinator.paramCount,
    token: token.value,
    log,
    role: 'coordinator',
    status: (connections) => ({
      step: coordinator.step,
      totalSteps: coordinator.totalSteps,
      epoch: coordinator.epoch,
      done: coordinator.done,
      trainers: coordinator.trainers(),
      removed: coordinator.removed,
      aggregate,
      connections,
      metrics: coordinator.metrics.slice(-500),
      epochs: coordinator.epochsExactlyOnce(),
    }),
  });
  log(
    `start trainers with: npx nx run trainer:start -- --coordinator ${server.url} ${token.file ? `--token-file ${token.file}` : '(token from $DANN_TOKEN)'}`,
  );
  const { method, preset, batchSize } = run.train;
  log(
    `${method} ${run.data.source} -> ${run.data.target}, ${preset}: ${coordinator.paramCount} parameters, ${coordinator.totalSteps} steps of ${batchSize}`,
  );
  coordinator.maybeStartStep();
  await done;
  writeFileSync(join(out, 'accounting.json'), JSON.stringify(coordinator.epochsExactlyOnce()) + '\n');
  server.close();
  await files.finish(coordinator);
});

/** A run directory's log: each line to stdout and, time-stamped, to OUT/FILE. */
function runLog(out: string, file: string): (line: string) => void {
  mkdirSync(out, { recursive: true });
  const logFile = new AppendLog(join(out, file), (line) => console.error(line));
  return (line: string) => {
    console.log(line);
    logFile.append(`${new Date().toISOString()} ${line}\n`);
  };
}

interface RelayMain extends Omit<ServeOptions, 'paramCount' | 'log' | 'role' | 'status' | 'token'> {
  readonly url: string;
  readonly ca: Buffer | undefined;
  readonly token: string;
  readonly name: string;
  readonly minTrainers: number;
  readonly aggregate: Aggregate;
  readonly clipFactor: number;
  readonly maxOutlierSteps: number;
  readonly resyncIntervalMs: number;
  readonly log: (line: string) => void;
}

/**
 * `--upstream`: a relay. It connects to the coordinator above as one trainer (reconnecting as trainers do), and
 * once welcomed serves trainers itself; it ends when the coordinator above finishes the run.
 */
async function relay(o: RelayMain): Promise<void> {
  const { log } = o;
  let ended!: (error?: string) => void;
  const end = new Promise<string | undefined>((resolve) => (ended = resolve));
  let welcomed!: () => void;
  const ready = new Promise<'ready'>((resolve) => (welcomed = () => resolve('ready')));
  const node = new Relay({ ...o, send: (frame) => send(frame), onReady: () => welcomed() });
  const send = connectUpstream({
    url: o.url,
    token: o.token,
    ca: o.ca,
    log,
    onOpen: () => node.hello(),
    onFrame: (frame, raw) => node.fromUpstream(frame, raw),
    onEnd: (error) => ended(error),
  });
  if ((await Promise.race([ready, end])) !== 'ready') {
    const error = await end;
    node.close();
    if (error) throw new Error(error);
    return;
  }
  const server = await serveTrainers(node, {
    ...o,
    paramCount: node.paramCount,
    role: 'relay',
    status: (connections) => ({
      relay: o.name,
      upstream: o.url,
      step: node.step,
      trainers: node.trainers(),
      removed: node.removed,
      done: node.finished,
      connections,
      metrics: [],
    }),
  });
  log(`start trainers with: npx nx run trainer:start -- --coordinator ${server.url} (the run's token)`);
  const error = await end;
  node.close();
  server.close();
  if (error) throw new Error(error);
  log('the run is finished');
}

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
