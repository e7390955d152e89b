import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import WebSocket from 'ws';
import { isDatasetName, loadDataset, sliceSet, type ImageSet } from '@dann/data';
import { BACKEND_CHOICES, selectBackend, Trainer, type TrainConfig } from '@dann/models';
import { nxInvocationOption, oneOf, parseCommand, readTokenFile, runMain } from '@dann/cli';
import {
  decodeFrame,
  encodeFrame,
  PROTOCOL_VERSION,
  ProtocolError,
  weightChecksum,
  type Frame,
  type Message,
  type WireDtype,
} from '@dann/protocol';

const command = {
  name: 'start',
  summary:
    'Starts a trainer: connects to a coordinator, computes gradients for its shards, applies the averaged updates.',
  usage: 'npx nx run trainer:start --gpu 1 -- --coordinator ws://HOST:PORT --token T',
  options: {
    coordinator: { type: 'string', description: 'coordinator address', default: 'ws://127.0.0.1:8765' },
    token: { type: 'string', description: "the run's token (visible in ps: prefer --token-file or $DANN_TOKEN)" },
    ca: {
      type: 'string',
      description: 'PEM certificate(s) to trust for a wss:// coordinator (its own, or the CA that signed it)',
    },
    'token-file': { type: 'string', description: 'read the token from this file (the coordinator writes OUT/token)' },
    name: {
      type: 'string',
      description: 'how the coordinator lists this trainer',
      default: `${hostname()}-${process.pid}`,
    },
    backend: { type: 'string', description: BACKEND_CHOICES.join(' | '), default: 'auto' },
    gpu: { type: 'string', description: 'GPU index for tfjs-node-gpu (sets CUDA_VISIBLE_DEVICES)' },
    'strict-device': { type: 'boolean', description: 'fail instead of falling back when the GPU cannot be used' },
    'data-dir': { type: 'string', description: 'data folder (default: $DANN_DATA_DIR or <workspace>/data)' },
  },
} as const;

interface Spec {
  train: TrainConfig;
  data: { source: string; target: string; limit?: number; valCount: number };
  checksumEvery: number;
}

runMain(async () => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const v = args.values;
  const token = v.token ?? (v['token-file'] === undefined ? process.env.DANN_TOKEN : readTokenFile(v['token-file']));
  if (!token)
    throw new Error(
      'pass --token-file (the coordinator writes OUT/token and prints the trainer command) or set DANN_TOKEN.',
    );
  const ca = v.ca === undefined ? undefined : readPem(v.ca);
  if (ca && !v.coordinator.startsWith('wss://'))
    throw new Error(`--ca is for a wss:// coordinator; ${v.coordinator} is not one.`);
  const backendRequest = oneOf('backend', v.backend, BACKEND_CHOICES);
  // `npx nx run trainer:start --gpu 1 -- ...`: Nx keeps --gpu before the `--` to itself.
  const gpuArg = v.gpu ?? nxInvocationOption('gpu');
  const gpu = gpuArg === undefined ? undefined : Number(gpuArg);
  if (gpu !== undefined && !(Number.isInteger(gpu) && gpu >= 0))
    throw new Error(`--gpu must be a GPU index (0, 1, ...), got "${gpuArg}".`);
  const log = (line: string) => console.log(`[${v.name}] ${line}`);
  const backend = await selectBackend({ backend: backendRequest, gpu, strictDevice: Boolean(v['strict-device']), log });

  let data: { spec: Spec; source: ImageSet; target: ImageSet; paramCount: number; wireDtype: WireDtype } | null = null;
  let trainer: Trainer | null = null;
  let finished = false;
  let attempt = 0;

  const loadData = (spec: Spec) => {
    const { source, target, limit, valCount } = spec.data;
    if (!isDatasetName(source) || !isDatasetName(target))
      throw new Error(`the coordinator asked for unknown datasets ${source} / ${target}.`);
    const opts = { limit, dataDir: v['data-dir'], log };
    const all = loadDataset(source, 'train', opts);
    return {
      source: sliceSet(all, 0, all.count - valCount, `${source}/train`),
      target: loadDataset(target, 'train', opts),
    };
  };

  const connect = () => {
    const ws = new WebSocket(v.coordinator, {
      headers: { authorization: `Bearer ${token}` },
      perMessageDeflate: false,
      maxPayload: 1 << 30,
      ca,
    });
    const send = (m: Message, payload?: Float32Array) => ws.send(encodeFrame(m, payload, data?.wireDtype ?? 'f32'));
    ws.on('unexpected-response', (_req, res) => {
      finished = true;
      console.error(
        `error: the coordinator refused the connection (HTTP ${res.statusCode}${res.statusCode === 401 ? ': wrong or missing token' : ''}).`,
      );
      process.exitCode = 1;
      ws.terminate();
    });
    ws.on('open', () => {
      attempt = 0;
      log(`connected to ${v.coordinator}`);
      send({
        type: 'hello',
        protocol: PROTOCOL_VERSION,
        name: v.name,
        backend: backend.backend,
        device: backend.device,
      });
    });
    ws.on('message', (raw) => {
      let frame: Frame;
      try {
        frame = decodeFrame(raw as Buffer, { maxPayload: data ? 3 * data.paramCount : 1 << 28 });
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        log(`bad frame from the coordinator: ${err.message}`);
        return ws.close(1008, 'bad frame');
      }
      const msg = frame.message;
      switch (msg.type) {
        case 'welcome': {
          const spec = msg.config as unknown as Spec;
          if (!data || JSON.stringify(data.spec) !== JSON.stringify(spec))
            data = { spec, ...loadData(spec), paramCount: msg.paramCount, wireDtype: msg.wireDtype as WireDtype };
          log(`joined: ${spec.train.method} ${spec.data.source} -> ${spec.data.target}, ${msg.paramCount} parameters`);
          break;
        }
        case 'state': {
          const [w, m] = msg.sizes;
          const p = frame.payload!;
          trainer?.dispose();
          trainer = new Trainer(data!.spec.train, data!.source, data!.target, {
            weights: p.subarray(0, w),
            optimizer: { step: msg.optimizerStep, m: p.subarray(w, w + m), v: p.subarray(w + m) },
            step: msg.step,
          });
          if (trainer.net.size !== data!.paramCount)
            throw new Error(
              `the coordinator's network has ${data!.paramCount} parameters, this one ${trainer.net.size}.`,
            );
          log(`state at step ${msg.step}`);
          break;
        }
        case 'assign': {
          if (!trainer) return;
          const t0 = performance.now();
          const r = trainer.gradientFor(msg.source, msg.target, msg.lambda, msg.seed, true);
          send(
            {
              type: 'gradient',
              step: msg.step,
              shard: msg.shard,
              samples: r.samples,
              labelLoss: r.labelLoss,
              domainLoss: r.domainLoss,
              labelAcc: r.labelAccuracy,
              domainAcc: r.domainAccuracy,
              computeMs: performance.now() - t0,
            },
            r.gradient,
          );
          break;
        }
        case 'update': {
          if (!trainer) return;
          if (trainer.step !== msg.step) {
            log(
              `update for step ${msg.step} but this replica is at step ${trainer.step}: reconnecting for a fresh state`,
            );
            return ws.close(1000, 'out of step');
          }
          trainer.apply(frame.payload!, msg.lr);
          if (trainer.step % data!.spec.checksumEvery === 0)
            send({ type: 'checksum', step: trainer.step, value: weightChecksum(trainer.weights) });
          if (trainer.step % 20 === 0) log(`step ${trainer.step}`);
          break;
        }
        case 'wait':
          log(msg.message);
          break;
        case 'leave':
          if (msg.code === 'finished') {
            log('coordinator: the run is finished');
            finished = true;
          }
          break;
        case 'error':
          if (msg.code === 'protocol-version') {
            // Reconnecting cannot help: the versions will not change by waiting.
            finished = true;
            console.error(`error: ${msg.message}`);
            process.exitCode = 1;
            return void ws.close(1000, 'protocol version');
          }
          log(`coordinator says: ${msg.message}`);
          break;
        default:
          log(`ignoring unexpected ${msg.type} message`);
      }
    });
    ws.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code && TLS_REFUSALS.has(err.code)) {
        // Retrying cannot help: the certificate will not become trusted by waiting.
        finished = true;
        console.error(
          `error: the coordinator's TLS certificate is not trusted (${err.message}); pass --ca with the certificate the coordinator serves or the CA that signed it.`,
        );
        process.exitCode = 1;
        return;
      }
      log(`connection error: ${err.message}`);
    });
    ws.on('close', () => {
      if (finished) {
        trainer?.dispose();
        log('done');
        return;
      }
      const delay = Math.min(15_000, 500 * 2 ** attempt++);
      log(`disconnected; reconnecting in ${(delay / 1000).toFixed(1)} s`);
      setTimeout(connect, delay);
    });
  };
  connect();
});

/** TLS verification failures: the coordinator is not who the trainer was told to trust. */
const TLS_REFUSALS = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function readPem(file: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read --ca ${file} (${(err as NodeJS.ErrnoException).code ?? err}).`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`--ca ${file} holds no PEM certificate.`);
  return pem;
}
