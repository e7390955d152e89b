import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectBackend } from './backend.ts';

test('a GPU that cannot load is reported in one line and falls back; strict makes it an error', {
  timeout: 30_000,
}, async () => {
  const lines: string[] = [];
  const info = await selectBackend({ backend: 'auto', gpu: 1, log: (l) => lines.push(l) });
  assert.equal(process.env.CUDA_VISIBLE_DEVICES, '1');
  assert.match(
    info.fallbacks[0],
    /^GPU 1 unavailable: @tensorflow\/tfjs-node-gpu is not installed \(see the README, "GPU machines"\); falling back$/,
  );
  assert.ok(['tensorflow', 'wasm'].includes(info.backend));
  await assert.rejects(
    selectBackend({ backend: 'tensorflow-gpu', gpu: 0, strictDevice: true }),
    /cannot use the tensorflow-gpu backend: @tensorflow\/tfjs-node-gpu is not installed/,
  );
  await selectBackend({ backend: 'wasm' });
});
