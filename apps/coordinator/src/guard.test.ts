import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionGate, RefusalLog, connectionLimits, openFileLimit, tokenMatches } from './guard.ts';

test('the token check needs the exact bearer token', () => {
  assert.equal(tokenMatches('secret', 'Bearer secret'), true);
  for (const header of [undefined, '', 'secret', 'Bearer ', 'Bearer secret2', 'bearer secret'])
    assert.equal(tokenMatches('secret', header), false, String(header));
});

test('connection limits stay below the open-file limit, leaving descriptors for files', () => {
  assert.deepEqual(connectionLimits(1024, 1024), { total: 960, pending: 256, pendingPerAddress: 32 });
  assert.deepEqual(connectionLimits(1024, 200), { total: 136, pending: 68, pendingPerAddress: 17 });
  assert.equal(connectionLimits(100, null).total, 100);
  assert.ok((openFileLimit() ?? 1) > 0);
});

test('the gate makes room by evicting the oldest unauthenticated sockets (its address first); it refuses only when authenticated ones fill it', () => {
  const gate = new ConnectionGate({ total: 4, pending: 3, pendingPerAddress: 2 });
  assert.deepEqual(gate.admit('a:1', 'a'), []);
  assert.deepEqual(gate.admit('b:1', 'b'), []);
  assert.deepEqual(gate.admit('a:2', 'a'), []);
  assert.deepEqual(gate.admit('a:3', 'a'), ['a:1'], 'a third from a evicts the oldest from a');
  assert.deepEqual(gate.admit('c:1', 'c'), ['b:1'], 'a full pending table evicts the oldest');
  gate.closed('a:1'); // evicted sockets close later: nothing is counted twice
  assert.deepEqual(gate.counts, { open: 3, pending: 3 });
  gate.authenticated('a:2');
  gate.authenticated('c:1');
  gate.authenticated('zz:9'); // unknown (already evicted): ignored
  assert.deepEqual(gate.counts, { open: 3, pending: 1 });
  assert.deepEqual(gate.admit('d:1', 'd'), []);
  assert.deepEqual(gate.admit('e:1', 'e'), ['a:3'], 'the total is reached: an unauthenticated socket makes room');
  gate.authenticated('d:1');
  gate.authenticated('e:1');
  assert.equal(gate.admit('f:1', 'f'), null, 'four authenticated sockets: refused');
  gate.closed('c:1');
  assert.deepEqual(gate.admit('f:1', 'f'), []);
  assert.deepEqual(gate.counts, { open: 4, pending: 1 });
});

test('refusals are logged once, then summed up per window', async () => {
  const lines: string[] = [];
  const log = new RefusalLog((l) => lines.push(l), 50);
  for (let i = 0; i < 1000; i++) log.refused('wrong token', `10.0.0.${i % 7}: wrong or missing token`);
  log.refused('bad frame', 'trainer x: not a DANN frame (bad magic).');
  assert.deepEqual(lines, ['refused a connection: 10.0.0.0: wrong or missing token']);
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(lines.length, 2);
  assert.match(
    lines[1],
    /^refused 1000 more connection\(s\) in the last 0.05 s: 999 wrong token \(e.g. 10.0.0.1: wrong or missing token\); 1 bad frame/,
  );
  assert.equal(log.total, 1001);
});
