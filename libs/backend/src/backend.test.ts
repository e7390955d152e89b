import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadFailure, selectBackend } from './backend.ts';
import { chooseAdapter, hasSharedLibrary, parseAdapterList, type GpuAdapter } from './webgpu.ts';

test('a GPU that is not there is one line naming why and what runs instead; --strict-device makes it an error', {
  timeout: 60_000,
}, async () => {
  const lines: string[] = [];
  const info = await selectBackend({ backend: 'auto', gpu: 99, log: (l) => lines.push(l) });
  assert.match(info.fallbacks[0], /^GPU 99 unavailable: no (hardware GPU adapter|GPU 99: the hardware adapters are )/);
  assert.ok(['tensorflow', 'wasm'].includes(info.backend));
  assert.deepEqual(lines, [`${info.fallbacks[0]}; backend: ${info.backend} on ${info.device}`]);
  await assert.rejects(
    selectBackend({ backend: 'webgpu', gpu: 99, strictDevice: true }),
    /^Error: cannot use the webgpu backend: no (hardware GPU adapter|GPU 99)/,
  );
  await selectBackend({ backend: 'wasm' });
});

test("tfjs-node-gpu's load failures are one clause: not installed, or installed without CUDA", () => {
  const pkg = '@tensorflow/tfjs-node-gpu';
  assert.equal(
    loadFailure(pkg, Object.assign(new Error(`Cannot find package '${pkg}'`), { code: 'ERR_MODULE_NOT_FOUND' })),
    `${pkg} is not installed (see the README, "GPU machines")`,
  );
  assert.equal(
    loadFailure(pkg, new Error('libcudart.so.11.0: cannot open shared object file\n    at dlopen')),
    `${pkg} is installed but the CUDA libraries are missing (libcudart.so.11.0: cannot open shared object file)`,
  );
});

test("dawn.node's adapter list is read from the message it rejects an unknown adapter name with", () => {
  const message = `no adapter with backend 'vulkan' and name 'x' found
Available adapters:
 * backend: 'vulkan', name: 'NVIDIA H200'
 * backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)'`;
  assert.deepEqual(parseAdapterList(message, 'vulkan'), [
    { backend: 'vulkan', name: 'NVIDIA H200', software: false },
    { backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)', software: true },
  ]);
  assert.deepEqual(parseAdapterList('no suitable backends found', 'vulkan'), []);
});

test('--gpu N is the N-th hardware adapter; a software one stands in only when allowed; twins by name are refused', () => {
  const gpu = (name: string): GpuAdapter => ({ backend: 'vulkan', name, software: false });
  const llvmpipe: GpuAdapter = { backend: 'opengles', name: 'llvmpipe (LLVM 15.0.6, 256 bits)', software: true };
  const survey = { adapters: [gpu('NVIDIA A100'), llvmpipe, gpu('NVIDIA H200')], problems: [] };
  assert.deepEqual(chooseAdapter(survey, 1, false), { adapter: gpu('NVIDIA H200') });
  assert.deepEqual(chooseAdapter(survey, 2, true), {
    adapter: llvmpipe,
    note: 'no GPU 2: the hardware adapters are 0 NVIDIA A100, 1 NVIDIA H200',
  });
  const none = {
    adapters: [llvmpipe],
    problems: ['libvulkan.so.1 (the Vulkan loader; Debian/Ubuntu: libvulkan1) is not installed'],
  };
  assert.deepEqual(chooseAdapter(none, 0, false), {
    failure:
      'no hardware GPU adapter, as libvulkan.so.1 (the Vulkan loader; Debian/Ubuntu: libvulkan1) is not installed',
  });
  assert.equal((chooseAdapter(none, 0, true) as { adapter: GpuAdapter }).adapter, llvmpipe);
  const twins = { adapters: [gpu('NVIDIA H200'), gpu('NVIDIA H200')], problems: [] };
  assert.deepEqual(chooseAdapter(twins, 0, false), { adapter: gpu('NVIDIA H200') });
  assert.match(
    (chooseAdapter(twins, 1, false) as { failure: string }).failure,
    /^GPU 1 \(NVIDIA H200\) has the same name as GPU 0, and dawn.node tells adapters apart only by name/,
  );
});

test('a shared library is found through LD_LIBRARY_PATH or the ld.so cache', () => {
  const dir = mkdtempSync(join(tmpdir(), 'libs-'));
  writeFileSync(join(dir, 'libdann-test.so.1'), '');
  assert.equal(hasSharedLibrary('libdann-test.so.1', { LD_LIBRARY_PATH: `/nonexistent:${dir}` }), true);
  assert.equal(hasSharedLibrary('libdann-test.so.1', {}), false);
  rmSync(dir, { recursive: true });
});
