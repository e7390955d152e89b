import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateMnistM, proceduralTexture } from './mnistm.ts';
import { createRng } from './rng.ts';
import type { ImageSet } from './imageset.ts';

function tinyMnist(count: number): ImageSet {
  const images = new Uint8Array(count * 28 * 28);
  for (let i = 0; i < count; i++) for (let y = 8; y < 20; y++) images[i * 784 + y * 28 + 14] = 255; // a vertical stroke
  return {
    name: 'tiny',
    count,
    height: 28,
    width: 28,
    channels: 1,
    images,
    labels: Uint8Array.from({ length: count }, (_, i) => i % 10),
  };
}

test('blends each digit with its texture as |texture - digit|, deterministically', () => {
  const mnist = tinyMnist(6);
  const a = generateMnistM(mnist, { seed: 5 });
  const b = generateMnistM(mnist, { seed: 5 });
  assert.deepEqual(a.images, b.images);
  assert.deepEqual(a.labels, mnist.labels);
  assert.equal(a.channels, 3);
  for (let i = 0; i < a.count; i++) {
    const bg = a.images.subarray(i * 2352, (i + 1) * 2352);
    // On the stroke (digit = 255) the pixel is 255 - texture; next to it (digit = 0) it is the texture.
    for (let y = 8; y < 20; y++) {
      for (let ch = 0; ch < 3; ch++) {
        const inside = bg[(y * 28 + 14) * 3 + ch];
        const outside = bg[(y * 28 + 15) * 3 + ch];
        assert.ok(Math.abs(inside + outside - 255) <= 60, `stroke not inverted at image ${i} row ${y}`);
      }
    }
  }
  const c = generateMnistM(mnist, { seed: 6 });
  assert.notDeepEqual(a.images, c.images);
});

test('contrast scales the texture spread and is validated', () => {
  const spread = (contrast: number) => {
    const tex = proceduralTexture(createRng(9), 28, 28, contrast);
    let widest = 0;
    for (let ch = 0; ch < 3; ch++) {
      let min = Infinity,
        max = -Infinity;
      for (let i = ch; i < tex.length; i += 3) {
        min = Math.min(min, tex[i]);
        max = Math.max(max, tex[i]);
      }
      widest = Math.max(widest, max - min);
    }
    return widest;
  };
  assert.ok(spread(0) < 1e-3);
  assert.ok(spread(1) > spread(0.3));
  assert.throws(() => generateMnistM(tinyMnist(1), { seed: 1, contrast: 2 }), /contrast must be between 0 and 1/);
});
