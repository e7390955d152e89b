import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// The umbrella package's Node bundle registers every op's gradient (the MaxPoolGrad case differentiates a pool).
import '@tensorflow/tfjs';
import { getKernel } from '@tensorflow/tfjs-core';
import { registerWasmTrainingKernels, WASM_TRAINING_KERNELS } from './index.ts';
import { conv2DBackpropFilterPath } from './conv2d-backprop-filter.ts';
import { createRng, type Rng } from '@dann/data';

await registerWasmTrainingKernels('project');

type Shape4 = [number, number, number, number];

function randomArray(n: number, seed: number, levels = 0): Float32Array {
  const rng = createRng(seed);
  // `levels` > 0 quantises the values so that ties (equal maxima) occur.
  return Float32Array.from({ length: n }, () => (levels ? Math.round(rng.normal() * levels) / levels : rng.normal()));
}

/** max |a - b| / (max |b| + tiny): relative to the reference's scale. */
function relErr(a: Float32Array, b: Float32Array): number {
  let diff = 0,
    scale = 1e-12;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

/** Runs `compute` on cpu (the reference) and on wasm with the project's kernels; asserts <= 1e-4 relative. */
async function matchesCpu(label: string, compute: () => tf.Tensor): Promise<void> {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    return tf.tidy(() => compute().dataSync() as Float32Array);
  };
  const want = await run('cpu');
  const got = await run('wasm');
  assert.equal(got.length, want.length, label);
  const err = relErr(got, want);
  assert.ok(err <= 1e-4, `${label}: relative error ${err}`);
}

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const tensor = (shape: readonly number[], seed: number, levels = 0) =>
  tf.tensor(randomArray(size(shape), seed, levels), shape as number[]);

interface ConvCase {
  n: number;
  h: number;
  w: number;
  ci: number;
  co: number;
  kh: number;
  kw: number;
  stride: number;
  pad: 'same' | 'valid';
}

function convCases(seed: number): ConvCase[] {
  const rng = createRng(seed);
  const cases: ConvCase[] = [];
  for (const stride of [1, 2]) {
    for (const pad of ['same', 'valid'] as const) {
      for (let i = 0; i < 4; i++) {
        const c = {
          n: 1 + rng.int(3),
          h: 5 + rng.int(9),
          w: 5 + rng.int(9),
          ci: 1 + rng.int(5),
          co: 1 + rng.int(6),
          kh: 1 + rng.int(5),
          kw: 1 + rng.int(5),
          stride,
          pad,
        };
        if (pad === 'valid' && (c.kh > c.h || c.kw > c.w)) continue;
        cases.push(c);
      }
    }
  }
  // Output channels a multiple of 8 (the direct dW kernel at stride 1): any input channels (4-row tiles and
  // the 1-row tail), kernels larger than the padding, even kernels (asymmetric 'same' padding).
  for (const pad of ['same', 'valid'] as const) {
    for (let i = 0; i < 4; i++) {
      const c = {
        n: 1 + rng.int(3),
        h: 4 + rng.int(10),
        w: 4 + rng.int(10),
        ci: 1 + rng.int(9),
        co: 8 * (1 + rng.int(2)),
        kh: 1 + rng.int(5),
        kw: 1 + rng.int(5),
        stride: 1,
        pad,
      };
      if (pad === 'valid' && (c.kh > c.h || c.kw > c.w)) continue;
      cases.push(c);
    }
  }
  // The seed network's layer shapes.
  cases.push(
    { n: 4, h: 32, w: 32, ci: 3, co: 32, kh: 3, kw: 3, stride: 1, pad: 'same' },
    { n: 2, h: 15, w: 15, ci: 32, co: 64, kh: 3, kw: 3, stride: 1, pad: 'valid' },
  );
  return cases;
}

const convInfo = (c: ConvCase) =>
  tf.backend_util.computeConv2DInfo([c.n, c.h, c.w, c.ci], [c.kh, c.kw, c.ci, c.co], c.stride, 1, c.pad);

test('wasm Conv2DBackpropFilter (project and reference versions) matches the cpu backend (strides 1/2, same/valid, odd sizes, the direct kernel and both formulations)', {
  timeout: 60_000,
}, async () => {
  const variants = new Set<string>();
  for (const set of ['project', 'reference'] as const) {
    await registerWasmTrainingKernels(set);
    for (const [i, c] of convCases(2024).entries()) {
      const xShape: Shape4 = [c.n, c.h, c.w, c.ci];
      const dyShape = convInfo(c).outShape;
      if (set === 'project')
        variants.add(conv2DBackpropFilterPath({ shape: xShape } as never, { shape: dyShape } as never, c.stride));
      await matchesCpu(
        `${set} Conv2DBackpropFilter ${JSON.stringify(c)}`,
        () =>
          tf
            .engine()
            .runKernel('Conv2DBackpropFilter', { x: tensor(xShape, 2 * i + 1), dy: tensor(dyShape, 2 * i + 2) }, {
              strides: [c.stride, c.stride],
              pad: c.pad,
              dataFormat: 'NHWC',
              dimRoundingMode: undefined,
              filterShape: [c.kh, c.kw, c.ci, c.co],
            } as never) as tf.Tensor,
      );
    }
  }
  await registerWasmTrainingKernels('project');
  assert.deepEqual([...variants].sort(), ['direct', 'dy-input', 'x-input']);
});

test('wasm Conv2DBackpropInput matches the cpu backend (stride 1 fast path; stride 2 falls back)', {
  timeout: 60_000,
}, async () => {
  for (const [i, c] of convCases(77).entries()) {
    const dyShape = convInfo(c).outShape;
    await matchesCpu(
      `Conv2DBackpropInput ${JSON.stringify(c)}`,
      () =>
        tf
          .engine()
          .runKernel(
            'Conv2DBackpropInput',
            { dy: tensor(dyShape, 3 * i + 1), filter: tensor([c.kh, c.kw, c.ci, c.co], 3 * i + 2) },
            {
              strides: [c.stride, c.stride],
              pad: c.pad,
              dataFormat: 'NHWC',
              dimRoundingMode: undefined,
              inputShape: [c.n, c.h, c.w, c.ci],
            } as never,
          ) as tf.Tensor,
    );
  }
});

test('wasm BatchMatMul matches the cpu backend for every transpose combination', { timeout: 30_000 }, async () => {
  const rng: Rng = createRng(5);
  let k = 0;
  for (const [ta, tb] of [
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ] as const) {
    // Both rewrites of a x b^T: a small a (transpose it) and a large a (transpose b).
    for (const [m, kk, n] of [
      [1 + rng.int(9), 2 + rng.int(40), 1 + rng.int(50)],
      [64, 37, 3],
      [3, 37, 64],
      [7, 1, 5],
    ]) {
      const a = ta ? [kk, m] : [m, kk],
        b = tb ? [n, kk] : [kk, n];
      k++;
      await matchesCpu(`matMul ${JSON.stringify({ a, b, ta, tb })}`, () =>
        tf.matMul(tensor(a, 10 * k), tensor(b, 10 * k + 1), ta, tb),
      );
    }
  }
  await matchesCpu('batched matMul falls back', () =>
    tf.matMul(tensor([3, 4, 5], 1), tensor([3, 6, 5], 2), false, true),
  );
});

test('wasm MaxPoolGrad matches the cpu backend, ties included (2x2 fast path and general windows)', {
  timeout: 30_000,
}, async () => {
  const cases = [
    { x: [2, 8, 8, 3], size: 2, stride: 2, pad: 'valid' },
    { x: [3, 7, 9, 5], size: 2, stride: 2, pad: 'valid' }, // odd sizes: last row/column never pooled
    { x: [2, 9, 7, 4], size: 3, stride: 2, pad: 'same' },
    { x: [1, 6, 6, 2], size: 3, stride: 1, pad: 'valid' }, // overlapping windows accumulate
    { x: [2, 12, 12, 3], size: 4, stride: 4, pad: 'valid' },
  ] as const;
  for (const [i, c] of cases.entries()) {
    await matchesCpu(`MaxPoolGrad ${JSON.stringify(c)}`, () => {
      const x = tensor(c.x, i + 1, 2) as tf.Tensor4D;
      // The gradient of sum(maxPool(x) * w) w.r.t. x runs MaxPoolGrad with dy = w.
      const y = tf.maxPool(x, c.size, c.stride, c.pad);
      const w = tensor(y.shape, i + 100);
      return tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, c.size, c.stride, c.pad), w)))(x);
    });
  }
});

test('wasm Sum matches the cpu backend (leading axes fast path, other axes fall back)', async () => {
  const x = [5, 4, 3, 6];
  const cases: [number[], boolean][] = [
    [[0], false],
    [[0, 1, 2], false],
    [[0, 1, 2, 3], false],
    [[1, 0], true],
    [[1, 2], false],
    [[3], true],
  ];
  for (const [i, [axes, keepDims]] of cases.entries()) {
    await matchesCpu(`sum ${JSON.stringify({ axes, keepDims })}`, () => tf.sum(tensor(x, i + 1), axes, keepDims));
  }
});

test('wasm Identity shares its input: equal values, and disposing one leaves the other readable', async () => {
  await tf.setBackend('wasm');
  const x = tf.tensor([1, 2, 3, 4], [2, 2]);
  const bytes = tf.memory().numBytes;
  const y = tf.engine().runKernel('Identity', { x }, {}) as tf.Tensor;
  assert.equal(tf.memory().numBytes, bytes + 16, 'a new tensor is counted');
  assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3, 4]);
  x.dispose();
  assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3, 4]);
  y.dispose();
});

test('the reference set restores tfjs kernels and the project set replaces them again', async () => {
  const project = WASM_TRAINING_KERNELS.map((k) => getKernel(k, 'wasm')!.kernelFunc);
  await registerWasmTrainingKernels('reference');
  const reference = WASM_TRAINING_KERNELS.map((k) => getKernel(k, 'wasm')!.kernelFunc);
  WASM_TRAINING_KERNELS.forEach((k, i) => assert.notEqual(reference[i], project[i], k));
  await registerWasmTrainingKernels('project');
  WASM_TRAINING_KERNELS.forEach((k, i) => assert.notEqual(getKernel(k, 'wasm')!.kernelFunc, reference[i], k));
});
