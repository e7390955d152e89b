import { hostname } from 'node:os';
import { selectBackend } from '@dann/backend';
import { connectUpstream, Replica } from '@dann/engine';
import { parseCommand, presentedToken, readCaFile, runMain } from '@dann/cli';
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
  const token = presentedToken(v.token, v['token-file']);
  if (!token)
    throw new Error(
      'pass --token-file (the coordinator writes OUT/token and prints the trainer command) or set DANN_TOKEN.',
    );
  const ca = v.ca === undefined ? undefined : readCaFile('ca', v.ca);
  if (ca && !v.coordinator.startsWith('wss://'))
    throw new Error(`--ca is for a wss:// coordinator; ${v.coordinator} is not one.`);
  const device = deviceRequest(v);
  const log = (line: string) => console.log(`[${v.name}] ${line}`);
  const backend = await selectBackend({ ...device, log });

  const replica = new Replica({
    name: v.name,
    backend,
    dataDir: v['data-dir'],
    log,
    // A gradient finished after its connection closed is not sent (the replica drops it; the socket may be new).
    send: (frame) => send(frame),
  });
  const send = connectUpstream({
    url: v.coordinator,
    token,
    ca,
    log,
    onOpen: () => replica.hello(),
    onFrame: async (frame) => {
      const outcome = await replica.receive(frame);
      if (frame.message.type === 'update' && replica.step !== null && replica.step % 20 === 0)
        log(`step ${replica.step}`);
      return outcome;
    },
    onEnd: (error) => {
      if (error) {
        console.error(`error: ${error}`);
        process.exitCode = 1;
      }
      void replica.dispose().then(() => log('done'));
    },
  });
});
