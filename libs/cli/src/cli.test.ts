import { test } from 'node:test';
import assert from 'node:assert/strict';
import { helpText, parseCommand, positiveInt, nxInvocationOption } from './cli.ts';

const cmd = {
  name: 'demo',
  summary: 'A demo command.',
  usage: 'demo --count N',
  options: {
    count: { type: 'string', description: 'how many', default: '3' },
    verbose: { type: 'boolean', description: 'say more' },
  },
} as const;

test('parses options with defaults and positionals', () => {
  const r = parseCommand(cmd, ['--count', '5', 'x']);
  assert.deepEqual({ ...r?.values }, { count: '5' });
  assert.deepEqual(r?.positionals, ['x']);
  assert.equal(parseCommand(cmd, [])?.values.count, '3');
});

test('--usage prints every option with its default instead of running', (t) => {
  const lines: string[] = [];
  t.mock.method(console, 'log', (s: string) => lines.push(s));
  assert.equal(parseCommand(cmd, ['--usage']), null);
  assert.equal(lines[0], helpText(cmd));
  assert.match(lines[0], /--count <value>\s+how many \(default: 3\)/);
  assert.match(lines[0], /--verbose\s+say more/);
});

test('an unknown option or a bad number is one sentence', () => {
  assert.throws(() => parseCommand(cmd, ['--bogus']), /^Error: demo: Unknown option '--bogus'.*\(see --usage\)\.$/);
  assert.throws(() => positiveInt('count', '2.5'), /--count must be a positive integer, got "2\.5"\./);
});

test('nxInvocationOption reads --NAME before the -- of the invoking nx command line', () => {
  const lines: Record<string, string> = {
    '11': ['node', 'nx', 'run', 'trainer:start', '--gpu', '1', '--', '--token', 'T', '--gpu', '7'].join('\0'),
    '12': ['node', 'nx', 'run', 'trainer:start', '--gpu=3'].join('\0'),
  };
  const read = (pid: string) => {
    if (!(pid in lines)) throw new Error('no such process');
    return lines[pid];
  };
  assert.equal(nxInvocationOption('gpu', { NX_INVOCATION_ANCESTOR_PIDS: '11' }, read), '1');
  assert.equal(nxInvocationOption('gpu', { NX_INVOCATION_ANCESTOR_PIDS: '99 12' }, read), '3');
  assert.equal(
    nxInvocationOption('token', { NX_INVOCATION_ANCESTOR_PIDS: '11' }, read),
    undefined,
    "after -- is not Nx's",
  );
  assert.equal(nxInvocationOption('gpu', {}, read), undefined);
  assert.equal(
    nxInvocationOption('gpu', { NX_INVOCATION_ANCESTOR_PIDS: '11 12' }, read),
    '3',
    'the innermost nx (last) wins',
  );
});
