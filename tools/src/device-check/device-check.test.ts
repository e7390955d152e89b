import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { webgpuTestSkip } from '@dann/backend';
import { buildPack, PACK_LIMIT_BYTES } from './build.ts';

const skip =
  process.platform === 'linux' && process.arch === 'x64'
    ? await webgpuTestSkip()
    : `the pack is for linux-x64, this is ${process.platform}-${process.arch}`;
if (skip) console.log(`# skipping the device check pack test: ${skip}`);

test('the GPU ready-check pack builds under 64 MiB and runs end to end with its own Node (on the software GPU here)', {
  skip,
  timeout: 600_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'device-check-'));
  const out = join(dir, 'pack');
  const files = await buildPack(out, () => {});
  const total = files.reduce((a, f) => a + f.bytes, 0);
  assert.ok(total < PACK_LIMIT_BYTES, `${total} bytes`);
  for (const f of ['check.mjs', 'node.gz', 'run.sh', 'dist/linux-x64/dawn.node.gz', 'tfjs-backend-wasm-simd.wasm'])
    assert.ok(
      files.some((x) => x.file === f),
      f,
    );
  // run.sh unpacks and runs the pack's own Node.
  const r = spawnSync(
    'sh',
    [join(out, 'run.sh'), '--software', '--presets', 'paper', '--batches', '8', '--runs', '1', '--max-seconds', '1'],
    { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: dir, TMPDIR: dir } },
  );
  const output = r.stdout + r.stderr;
  assert.equal(r.status, 0, output);
  assert.match(output, /backend: webgpu on (software )?GPU /);
  assert.match(
    output,
    /gradient check \(paper network, DANN, batch 8, webgpu vs cpu\): largest relative error \S+ \(\S+\): passed/,
  );
  assert.match(output, /\| paper \| 8 \| [\d.]+ \([\d.–]+\) \[\d\] \| [\d.]+ \([\d.–]+\) \[\d\] \| [\d.]+x \|/);
  assert.match(output, /device check passed in \d+ s/);
  rmSync(dir, { recursive: true });
});
