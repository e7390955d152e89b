import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import WebSocket from 'ws';
import { selectBackend } from '@dann/backend';
import { Replica } from '@dann/engine';
import { parseCommand, readTokenFile, runMain } from '@dann/cli';
import { decodeFrame, ProtocolError, type Frame } from '@dann/protocol';
import { DEVICE_OPTIONS, deviceRequest } from './options.ts';

const command = {
  name: 'start',
  summary:
    'Starts a trainer: connects to a coordinator, computes gradients for its shards, applies the averaged updates.',
  usage: 'npx nx run trainer:start --gpu 1 -- --coordinator ws://HOST:PORT --token-file runs/NAME/token',
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
    ...DEVICE_OPTIONS,
  },
} as const;

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
  const device = deviceRequest(v);
  const log = (line: string) => console.log(`[${v.name}] ${line}`);
  const backend = await selectBackend({ ...device, log });

  let ws: WebSocket;
  const replica = new Replica({
    name: v.name,
    backend,
    dataDir: v['data-dir'],
    log,
    // A gradient finished after its connection closed is not sent (the replica drops it; the socket may be new).
    send: (frame) => ws.readyState === WebSocket.OPEN && ws.send(frame),
  });
  let finished = false;
  let attempt = 0;
  const stop = (message: string) => {
    finished = true;
    console.error(`error: ${message}`);
    process.exitCode = 1;
  };

  const connect = () => {
    const socket = new WebSocket(v.coordinator, {
      headers: { authorization: `Bearer ${token}` },
      perMessageDeflate: false,
      maxPayload: 1 << 30,
      ca,
    });
    ws = socket;
    socket.on('unexpected-response', (_req, res) => {
      stop(
        `the coordinator refused the connection (HTTP ${res.statusCode}${res.statusCode === 401 ? ': wrong or missing token' : ''}).`,
      );
      socket.terminate();
    });
    socket.on('open', () => {
      attempt = 0;
      log(`connected to ${v.coordinator}`);
      replica.hello();
    });
    socket.on('message', async (raw) => {
      let frame: Frame;
      try {
        frame = decodeFrame(raw as Buffer, { maxPayload: 1 << 28 });
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        log(`bad frame from the coordinator: ${err.message}`);
        return socket.close(1008, 'bad frame');
      }
      let outcome: Awaited<ReturnType<Replica['receive']>>;
      try {
        outcome = await replica.receive(frame);
      } catch (err) {
        // The coordinator's run cannot be trained here (unknown settings, missing data, another network).
        stop((err as Error).message);
        return socket.close(1000, 'cannot take part');
      }
      if (frame.message.type === 'update' && replica.step !== null && replica.step % 20 === 0)
        log(`step ${replica.step}`);
      switch (outcome.kind) {
        case 'finished':
          log('coordinator: the run is finished');
          finished = true;
          break;
        case 'fatal':
          // Reconnecting cannot help: the versions will not change by waiting.
          stop(outcome.message);
          socket.close(1000, 'protocol version');
          break;
        case 'resync':
          log(outcome.message);
          socket.close(1000, 'out of step');
          break;
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code && TLS_REFUSALS.has(err.code)) {
        // Retrying cannot help: the certificate will not become trusted by waiting.
        return stop(
          `the coordinator's TLS certificate is not trusted (${err.message}); pass --ca with the certificate the coordinator serves or the CA that signed it.`,
        );
      }
      log(`connection error: ${err.message}`);
    });
    socket.on('close', () => {
      if (finished) {
        void replica.dispose().then(() => log('done'));
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
