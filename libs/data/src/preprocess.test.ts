import { test } from 'node:test';
import assert from 'node:assert/strict';
import { INPUT_SIZE, PREPROCESSING, preprocessBatch, preprocessImage, resizeBilinear } from './preprocess.ts';
import type { ImageSet } from './imageset.ts';
import { AUGMENTATIONS } from './augment.ts';

test('standardises every image to mean 0 and standard deviation 1', () => {
  const img = Uint8Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 31) % 256);
  const out = new Float32Array(INPUT_SIZE);
  preprocessImage(img, 32, 32, 3, out);
  const mean = out.reduce((a, b) => a + b, 0) / out.length;
  const std = Math.sqrt(out.reduce((a, b) => a + (b - mean) ** 2, 0) / out.length);
  assert.ok(Math.abs(mean) < 1e-5);
  assert.ok(Math.abs(std - 1) < 1e-4);
});

test('a flat image stays finite (std floor) and grey becomes three equal channels', () => {
  const out = new Float32Array(INPUT_SIZE);
  preprocessImage(new Uint8Array(28 * 28).fill(200), 28, 28, 1, out);
  assert.ok(out.every((v) => Math.abs(v) < 1e-5));
  const grey = Uint8Array.from({ length: 28 * 28 }, (_, i) => i % 256);
  preprocessImage(grey, 28, 28, 1, out);
  for (let p = 0; p < 32 * 32; p++) {
    assert.equal(out[p * 3], out[p * 3 + 1]);
    assert.equal(out[p * 3], out[p * 3 + 2]);
  }
  assert.equal(PREPROCESSING.channels, 3);
});

test('bilinear resize with half-pixel centres matches hand-computed values', () => {
  // 2x2 -> 4x4: output pixel centres map to -0.25, 0.25, 0.75, 1.25 in source space (clamped at the edges).
  const out = new Float32Array(16);
  resizeBilinear(Uint8Array.from([0, 100, 200, 40]), 2, 2, 1, 4, 4, out);
  assert.deepEqual([...out.subarray(0, 4)], [0, 25, 75, 100]);
  assert.deepEqual([...out.subarray(12, 16)], [200, 160, 80, 40]);
  // An upscale keeps a constant image constant.
  resizeBilinear(new Uint8Array(28 * 28).fill(9), 28, 28, 1, 4, 4, out);
  assert.ok(out.every((v) => v === 9));
});

test('preprocessBatch places each image at its slot and rejects bad indices', () => {
  const set: ImageSet = {
    name: 's',
    count: 2,
    height: 32,
    width: 32,
    channels: 3,
    images: Uint8Array.from({ length: 2 * 3072 }, (_, i) => (i < 3072 ? i % 7 : i % 13)),
    labels: new Uint8Array(2),
  };
  const batch = preprocessBatch(set, [1, 0]);
  const one = new Float32Array(INPUT_SIZE);
  preprocessImage(set.images.subarray(3072), 32, 32, 3, one);
  assert.deepEqual(batch.subarray(0, INPUT_SIZE), one);
  assert.throws(() => preprocessBatch(set, [2]), /index 2 is outside 0\.\.1/);
  assert.throws(() => preprocessImage(new Uint8Array(10), 32, 32, 3, one), /do not make a 32x32x3 image/);
});

test('augmentation: each image changes by its own draws from (seed, index), the same in any batch; zero bounds change nothing', () => {
  const set: ImageSet = {
    name: 'grid',
    count: 4,
    height: 28,
    width: 28,
    channels: 1,
    images: Uint8Array.from({ length: 4 * 28 * 28 }, (_, i) => ((i % 28) * 9 + Math.floor(i / 28) * 3) % 256),
    labels: new Uint8Array(4),
  };
  const augment = { augmentation: AUGMENTATIONS.affine, seed: 7 };
  const whole = preprocessBatch(set, [0, 1, 2, 3], undefined, augment);
  const part = preprocessBatch(set, [2, 3], undefined, augment);
  assert.deepEqual(part, whole.subarray(2 * INPUT_SIZE));
  const plain = preprocessBatch(set, [0, 1, 2, 3]);
  assert.notDeepEqual(whole, plain);
  const none = { rotation: 0, scale: 0, shear: 0, shift: 0, noise: 0 };
  const still = preprocessBatch(set, [0, 1, 2, 3], undefined, { augmentation: none, seed: 7 });
  for (let i = 0; i < still.length; i++) assert.ok(Math.abs(still[i] - plain[i]) < 1e-5, `value ${i}`);
  // Still standardised: mean 0, std 1 per image.
  const img = whole.subarray(0, INPUT_SIZE);
  const mean = img.reduce((a, v) => a + v, 0) / INPUT_SIZE;
  const std = Math.sqrt(img.reduce((a, v) => a + (v - mean) ** 2, 0) / INPUT_SIZE);
  assert.ok(Math.abs(mean) < 1e-4 && Math.abs(std - 1) < 1e-3, `${mean} ${std}`);
});

test('colour augmentation: a grey digit gets its own colour and polarity per channel and image', () => {
  // A bright square on a dark ground; noise and geometry off, so only the colour mapping acts.
  const images = new Uint8Array(32 * 32);
  for (let y = 10; y < 22; y++) for (let x = 10; x < 22; x++) images[y * 32 + x] = 255;
  const count = 200;
  const set: ImageSet = {
    name: 'square',
    count,
    height: 32,
    width: 32,
    channels: 1,
    images: new Uint8Array(count * 32 * 32).map((_, i) => images[i % (32 * 32)]),
    labels: new Uint8Array(count),
  };
  const colour = { rotation: 0, scale: 0, shear: 0, shift: 0, noise: 0, colour: true };
  const out = preprocessBatch(set, [...Array(count).keys()], undefined, { augmentation: colour, seed: 3 });
  const inside = (k: number, ch: number) => out[k * INPUT_SIZE + (16 * 32 + 16) * 3 + ch];
  const outside = (k: number, ch: number) => out[k * INPUT_SIZE + ch];
  let inverted = 0,
    differ = 0;
  for (let k = 0; k < count; k++) {
    for (let ch = 0; ch < 3; ch++) if (inside(k, ch) < outside(k, ch)) inverted++;
    if (Math.abs(inside(k, 0) - inside(k, 1)) > 0.05) differ++;
  }
  // Each channel is inverted with probability 1/2; channels of one image differ.
  assert.ok(inverted > 0.4 * 3 * count && inverted < 0.6 * 3 * count, `${inverted} of ${3 * count} channels inverted`);
  assert.ok(differ > 0.8 * count, `only ${differ} of ${count} images have channels that differ`);
  // The same draws in any batch.
  assert.deepEqual(
    preprocessBatch(set, [5], undefined, { augmentation: colour, seed: 3 }),
    out.subarray(5 * INPUT_SIZE, 6 * INPUT_SIZE),
  );
});
