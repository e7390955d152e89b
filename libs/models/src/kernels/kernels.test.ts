import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from './index.ts';
import { createRng } from '@dann/data';

registerWasmTrainingKernels();

/** Runs the kernel itself (tfjs does not export conv2dBackpropFilter as an op). */
function backpropFilter(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: [number, number, number, number], stride: number, pad: 'same' | 'valid'): tf.Tensor4D {
  return tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: [stride, stride], pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape } as never) as tf.Tensor4D;
}

function randomArray(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => rng.normal());
}

async function on<T extends tf.TensorContainer>(backend: string, fn: () => T): Promise<T> {
  await tf.setBackend(backend);
  await tf.ready();
  return tf.tidy(fn);
}

interface Case { n: number; h: number; w: number; ci: number; co: number; kh: number; kw: number; stride: number; pad: 'same' | 'valid' }

const cases: Case[] = [];
const rng = createRng(2024);
for (const stride of [1, 2]) {
  for (const pad of ['same', 'valid'] as const) {
    for (let i = 0; i < 4; i++) {
      cases.push({ n: 1 + rng.int(3), h: 5 + rng.int(9), w: 5 + rng.int(9), ci: 1 + rng.int(5), co: 1 + rng.int(6), kh: 1 + rng.int(5), kw: 1 + rng.int(5), stride, pad });
    }
  }
}
cases.push({ n: 4, h: 32, w: 32, ci: 3, co: 32, kh: 3, kw: 3, stride: 1, pad: 'same' }, { n: 2, h: 15, w: 15, ci: 32, co: 64, kh: 3, kw: 3, stride: 1, pad: 'valid' });

/** max |a - b| / (max |b| + tiny): relative to the reference's scale. */
function relErr(a: Float32Array, b: Float32Array): number {
  let diff = 0, scale = 1e-12;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

test('wasm Conv2DBackpropFilter matches the cpu backend (strides 1/2, same/valid, odd sizes)', { timeout: 60_000 }, async () => {
  await tf.setBackend('wasm');
  for (const [i, c] of cases.entries()) {
    if (c.pad === 'valid' && (c.kh > c.h || c.kw > c.w)) continue;
    const xShape: [number, number, number, number] = [c.n, c.h, c.w, c.ci];
    const filterShape: [number, number, number, number] = [c.kh, c.kw, c.ci, c.co];
    const xs = randomArray(c.n * c.h * c.w * c.ci, i * 2 + 1);
    const outShape = tf.backend_util.computeConv2DInfo(xShape, filterShape, c.stride, 1, c.pad).outShape;
    const dys = randomArray(outShape.reduce((a, b) => a * b, 1), i * 2 + 2);
    const compute = () => backpropFilter(tf.tensor4d(xs, xShape), tf.tensor4d(dys, outShape as [number, number, number, number]), filterShape, c.stride, c.pad).dataSync() as Float32Array;
    const want = await on('cpu', compute);
    const got = await on('wasm', compute);
    assert.equal(got.length, want.length);
    const err = relErr(got, want);
    assert.ok(err <= 1e-4, `case ${JSON.stringify(c)}: relative error ${err}`);
  }
});

test('the kernel leaks no tensors or wasm memory across calls', { timeout: 30_000 }, async () => {
  await tf.setBackend('wasm');
  const x = tf.randomNormal([2, 9, 9, 3]);
  const dy = tf.randomNormal([2, 5, 5, 4]);
  const once = () => tf.tidy(() => backpropFilter(x as tf.Tensor4D, dy as tf.Tensor4D, [3, 3, 3, 4], 2, 'same').dataSync());
  once();
  const before = tf.memory();
  for (let i = 0; i < 5; i++) once();
  const after = tf.memory();
  assert.equal(after.numTensors, before.numTensors);
  assert.equal(after.numBytes, before.numBytes);
  tf.dispose([x, dy]);
});
