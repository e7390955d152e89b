import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { workspaceRoot } from '@dann/data';

const run = (script: string, args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, script), ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 100_000,
  });

function withDir(fn: (dir: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'dann-dd-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('download-data usps --from refuses files that are not the published ones, in one line, copying nothing', {
  timeout: 120_000,
}, () => {
  withDir((dir) => {
    const from = join(dir, 'from');
    mkdirSync(from);
    writeFileSync(join(from, 'zip.train.gz'), 'not the USPS file');
    writeFileSync(join(from, 'zip.test.gz'), 'not the USPS file');
    const r = run('download-data.ts', ['usps', '--from', from, '--data-dir', join(dir, 'data')]);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^error: zip\.train\.gz: .*from\/zip\.train\.gz is corrupt or not the published file \(SHA-256 is [0-9a-f]{64}, expected 66ebf231[0-9a-f]{56}\); nothing was copied\.\n$/,
    );
    assert.deepEqual(readdirSync(join(dir, 'data', 'usps')), []);
    const wrong = run('download-data.ts', ['svhn', '--from', from, '--data-dir', join(dir, 'data')]);
    assert.equal(wrong.status, 1);
    assert.equal(wrong.stderr, 'error: --from applies to usps only; add usps to the datasets.\n');
  });
});

test('preview --dataset all says in one line that usps is skipped when its files are missing', {
  timeout: 120_000,
}, () => {
  withDir((dir) => {
    const r = run('preview.ts', ['--dataset', 'all', '--count', '4', '--out', join(dir, 'out'), '--data-dir', dir]);
    assert.equal(r.status, 0, r.stderr);
    const skipped = r.stdout.split('\n').filter((l) => l.startsWith('skipped usps: '));
    assert.equal(skipped.length, 1);
    assert.match(
      skipped[0],
      /usps\/train: .*zip\.train\.gz is missing; run `npx nx run tools:download-data -- usps`.* --from DIR/,
    );
    assert.ok(existsSync(join(dir, 'out', 'mnist-train.png')));
    assert.ok(!existsSync(join(dir, 'out', 'usps-train.png')));
  });
});

const shared = resolve(workspaceRoot(), '..', 'shared', 'data', 'usps');
test('download-data usps --from the real files copies and verifies them, and preview renders them', {
  timeout: 120_000,
  skip: existsSync(join(shared, 'zip.train.gz')) ? false : `skipped: no real USPS files at ${shared} to copy`,
}, () => {
  withDir((dir) => {
    const r = run('download-data.ts', ['usps', '--from', shared, '--data-dir', dir]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /zip\.train\.gz: copied from .* and verified \(sha256 66ebf231/);
    assert.match(
      r.stdout,
      /usps\/train: 7291 images readable\nzip\.test\.gz: copied .*\nusps\/test: 2007 images readable/,
    );
    const p = run('preview.ts', ['--dataset', 'usps', '--count', '9', '--out', join(dir, 'usps.png')], {
      DANN_DATA_DIR: dir,
    });
    assert.equal(p.status, 0, p.stderr);
    assert.match(p.stdout, /wrote .*usps\.png \(usps\/train, 9 images\)/);
  });
});
