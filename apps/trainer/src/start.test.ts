import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { decodeFrame, encodeFrame } from '@dann/protocol';

const START = fileURLToPath(new URL('./start.ts', import.meta.url));

test('a trainer told that the coordinator speaks another protocol version stops with that sentence instead of reconnecting', {
  timeout: 60_000,
}, async () => {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((resolve) => server.once('listening', resolve));
  let connections = 0;
  let hello: unknown = null;
  server.on('connection', (ws) => {
    connections++;
    ws.on('message', (raw) => {
      hello = decodeFrame(raw as Buffer, { maxPayload: 0 }).message;
      ws.send(
        encodeFrame({
          type: 'error',
          code: 'protocol-version',
          message: 'this coordinator speaks protocol 99, the trainer 2; run the same version of the project on both.',
        }),
      );
      ws.close(1008, 'protocol version');
    });
  });
  const { port } = server.address() as { port: number };
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', START, '--coordinator', `ws://127.0.0.1:${port}`, '--backend', 'cpu', '--name', 'old'],
    {
      env: { ...process.env, DANN_TOKEN: 't' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const code = await new Promise((resolve) => child.on('exit', resolve));
  server.close();
  assert.equal(code, 1, output);
  assert.match(
    output,
    /error: this coordinator speaks protocol 99, the trainer 2; run the same version of the project on both\./,
  );
  assert.doesNotMatch(output, /reconnecting/);
  assert.equal(connections, 1);
  assert.equal((hello as { type: string }).type, 'hello');
});
