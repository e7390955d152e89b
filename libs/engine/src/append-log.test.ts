import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppendLog } from './append-log.ts';

test('a log whose writes fail keeps its lines, reports once, and writes them when it can again; the file is owner-only', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dann-log-'));
  const file = join(dir, 'coordinator.log');
  writeFileSync(file, 'old\n', { mode: 0o644 });
  const reports: string[] = [];
  const log = new AppendLog(file, (l) => reports.push(l));
  assert.equal(statSync(file).mode & 0o777, 0o600, 'an existing log is made owner-only');
  log.append('one\n');
  assert.equal(readFileSync(file, 'utf8'), 'old\none\n');
  rmSync(file);
  mkdirSync(file); // a directory in its place: every append fails, for root too
  log.append('two\n');
  log.append('three\n');
  assert.equal(reports.length, 1);
  assert.match(reports[0], /cannot append \(EISDIR\); holding lines/);
  rmSync(file, { recursive: true });
  log.append('four\n');
  assert.equal(readFileSync(file, 'utf8'), 'two\nthree\nfour\n');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.match(reports[1], /writing works again \(3 held line\(s\) written, 0 lost\)/);
  rmSync(dir, { recursive: true });
});
