import { test } from 'node:test';
import assert from 'node:assert/strict';
import { helpText, parseCommand, positiveInt } from './cli.ts';

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
