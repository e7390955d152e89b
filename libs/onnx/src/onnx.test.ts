import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preprocessBatch, preprocessImage, INPUT_SIZE } from '@dann/data';
import { paramCount, paramSpecs, type Architecture } from '@dann/training';
import { DannNetwork } from '@dann/training';
import { selectBackend } from '@dann/backend';
import { Trainer } from '@dann/training';
import { toyConfig, toyDomain } from '@dann/training';
import { buildOnnxModel, describeOnnxModel, labelPathSha256, quantizePerChannel } from './export.ts';
import { openOnnx, verifyOnnx } from './verify.ts';
import { exportOnnx, sidecarPath } from './write.ts';
import type { OnnxSidecar } from './model-info.ts';

/** Every layout pitfall at once: odd and even 'same' kernels (asymmetric pads), a valid conv, pools whose stride is not their size. */
const ARCH: Architecture = {
  name: 'onnx-test',
  source: 'unit tests',
  input: { height: 32, width: 32, channels: 3 },
  features: [
    { kind: 'conv', filters: 5, kernel: 3, padding: 'same', activation: 'relu' },
    { kind: 'maxpool', size: 3, stride: 2 },
    { kind: 'conv', filters: 6, kernel: 4, padding: 'same', activation: 'relu' },
    { kind: 'maxpool', size: 2, stride: 2 },
    { kind: 'conv', filters: 7, kernel: 3, padding: 'valid', activation: 'linear' },
    { kind: 'dropout', rate: 0.25 },
    { kind: 'flatten' },
  ],
  label: [
    { kind: 'dense', units: 16, activation: 'relu' },
    { kind: 'dropout', rate: 0.5 },
    { kind: 'dense', units: 10, activation: 'linear' },
  ],
  domain: [
    { kind: 'dense', units: 8, activation: 'relu' },
    { kind: 'dense', units: 2, activation: 'linear' },
  ],
};

let weights: Float32Array;
let dir: string;
const source = toyDomain(320, 1, 'source');
const target = toyDomain(320, 2, 'target');
const first128 = Array.from({ length: 128 }, (_, i) => i);
/** 128 source and 128 target images: grey and colour, the blob in every cell (asymmetric). */
const images = Float32Array.from([...preprocessBatch(source, first128), ...preprocessBatch(target, first128)]);
const labels = Uint8Array.from([...source.labels.subarray(0, 128), ...target.labels.subarray(0, 128)]);
const training = { source: 'toy-source', target: 'toy-target', method: 'dann', network: ARCH.name, step: 0 };

before(async () => {
  await selectBackend({ backend: 'wasm' });
  const trainer = new Trainer(toyConfig({ architecture: ARCH, method: 'source-only', epochs: 6 }), source, target);
  while (!trainer.done) await trainer.trainStep();
  weights = await trainer.net.getWeights();
  trainer.dispose();
  dir = mkdtempSync(join(tmpdir(), 'onnx-test-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
});

/** A left-right and top-bottom mirror-symmetric image, and one that is not. */
function symmetricImage(): Float32Array {
  const px = new Uint8Array(32 * 32);
  for (let y = 0; y < 32; y++)
    for (let x = 0; x < 32; x++) px[y * 32 + x] = Math.abs(x - 15.5) + Math.abs(y - 15.5) < 10 ? 230 : 30;
  const out = new Float32Array(INPUT_SIZE);
  preprocessImage(px, 32, 32, 1, out);
  return out;
}

test('a trained model round-trips through ONNX: onnxruntime matches tfjs within 1e-4 with the same top-1', {
  timeout: 60_000,
}, async () => {
  const file = join(dir, 'model.onnx');
  const r = await exportOnnx({
    arch: ARCH,
    weights,
    training,
    accuracy: { source: 0.9, target: 0.8, testImages: 100 },
    verify: { images, labels },
    file,
  });
  const v = r.sidecar.verification;
  assert.ok(v.passed && v.maxAbsDiff <= 1e-4 && v.top1Mismatches === 0 && v.count === 256, JSON.stringify(v));
  // Source rows right, target rows at chance: well above 0.1 overall.
  assert.ok(r.tfjsAccuracy > 0.5, `the toy model learned (${r.tfjsAccuracy})`);
  assert.equal(r.onnxAccuracy, r.tfjsAccuracy);
  // Symmetric and asymmetric single images, at batch sizes other than the verification's (dynamic batch).
  assert.ok((await verifyOnnx(readFileSync(file), new DannNetwork(ARCH, weights), symmetricImage())).passed);
  const runner = await openOnnx(file, ARCH.input);
  const three = await runner.probabilities(images.subarray(0, 3 * INPUT_SIZE));
  await runner.close();
  for (let i = 0; i < 3; i++)
    assert.ok(Math.abs(three.subarray(i * 10, i * 10 + 10).reduce((a, b) => a + b, 0) - 1) < 1e-5);

  const d = describeOnnxModel(readFileSync(file));
  assert.equal(d.opset, 13);
  assert.equal(d.irVersion, 8);
  assert.equal(d.opTypes[0], 'Transpose');
  assert.deepEqual(
    d.opTypes.filter((t) => t === 'Conv' || t === 'MaxPool' || t === 'Gemm'),
    ['Conv', 'MaxPool', 'Conv', 'MaxPool', 'Conv', 'Gemm', 'Gemm'],
  );
  assert.equal(d.opTypes.at(-1), 'Softmax');
  assert.ok(!d.opTypes.includes('Dropout'));
  const sidecar = JSON.parse(readFileSync(sidecarPath(file), 'utf8')) as OnnxSidecar;
  assert.equal(sidecar.weightsSha256, labelPathSha256(ARCH, weights));
  assert.equal(d.metadata.weightsSha256, sidecar.weightsSha256);
  assert.deepEqual(JSON.parse(d.metadata.labels), ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  assert.deepEqual(JSON.parse(d.metadata.training), training);
  assert.equal(JSON.parse(d.metadata.preprocessing).layout, 'NHWC');
  assert.deepEqual(sidecar.input.shape, ['batch', 32, 32, 3]);
  // Only the label path is exported: the domain head's weights are not in the file.
  assert.equal(d.initializerBytes, labelPathFloats() * 4);
});

const labelPathFloats = () => paramCount(paramSpecs(ARCH), ['features', 'label']);

test('a model with the flatten order left in tfjs order fails verification on an asymmetric input, and nothing is written', {
  timeout: 60_000,
}, async () => {
  const file = join(dir, 'scrambled.onnx');
  await assert.rejects(
    exportOnnx({ arch: ARCH, weights, training, verify: { images, labels }, file, flattenOrder: 'none' }),
    /does not match tfjs .*nothing written/,
  );
  assert.equal(existsSync(file), false);
  assert.equal(existsSync(sidecarPath(file)), false);
});

test('int8: per-channel weights behind DequantizeLinear, a quarter of the bytes, accuracy kept', {
  timeout: 60_000,
}, async () => {
  const fp32 = describeOnnxModel(buildOnnxModel(ARCH, weights));
  const file = join(dir, 'model.int8.onnx');
  const r = await exportOnnx({ arch: ARCH, weights, training, verify: { images, labels }, file, quantization: 'int8' });
  const d = describeOnnxModel(readFileSync(file));
  assert.equal(d.opTypes.filter((t) => t === 'DequantizeLinear').length, 5);
  assert.ok(d.initializerBytes < 0.35 * fp32.initializerBytes, `${d.initializerBytes} vs ${fp32.initializerBytes}`);
  assert.ok(Math.abs(r.onnxAccuracy - r.tfjsAccuracy) <= 0.02);
  assert.ok(
    r.sidecar.verification.maxAbsDiff < 0.1 && r.sidecar.verification.maxAbsDiff > 0,
    String(r.sidecar.verification.maxAbsDiff),
  );
  assert.equal(r.sidecar.quantization, 'int8');
});

test('per-channel quantization: every weight within half a step of its channel scale', () => {
  const w = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => Math.sin(i * 1.7) * (i < 12 ? 0.01 : 3));
  const { q, scale } = quantizePerChannel(w, [2, 3, 4], 0);
  assert.equal(scale.length, 2);
  assert.ok(scale[0] < 0.001 && scale[1] > 0.01);
  w.forEach((v, i) => assert.ok(Math.abs(q[i] * scale[i < 12 ? 0 : 1] - v) <= scale[i < 12 ? 0 : 1] / 2 + 1e-9));
  const cols = quantizePerChannel(Float32Array.from([1, -100, 0.5, 50]), [2, 2], 1);
  assert.deepEqual(Array.from(cols.q), [127, -127, 64, 64]);
});

test('broken weights are refused before anything is built', () => {
  const bad = weights.slice();
  bad[3] = NaN;
  assert.throws(() => buildOnnxModel(ARCH, bad), /NaN or infinite/);
  assert.throws(() => buildOnnxModel(ARCH, weights.subarray(1)), /parameters but the weights hold/);
});
