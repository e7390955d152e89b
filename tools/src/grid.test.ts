import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadImage } from '@napi-rs/canvas';
import { renderGrid } from './grid.ts';
import type { ImageSet } from '@dann/data';

test('renders a decodable PNG grid sized from the images', async () => {
  const set: ImageSet = {
    name: 'toy',
    count: 5,
    height: 4,
    width: 4,
    channels: 1,
    images: new Uint8Array(80).fill(255),
    labels: Uint8Array.from([0, 1, 2, 3, 4]),
  };
  const png = renderGrid(set, 5, 2);
  assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')]);
  const img = await loadImage(png);
  // 5 images -> 3 columns x 2 rows of (4*2+8) x (4*2+22) cells, plus margins and a title bar.
  assert.equal(img.width, 3 * 16 + 8);
  assert.equal(img.height, 2 * 30 + 26 + 4);
});
