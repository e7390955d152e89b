import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readMat } from './mat.ts';
import { svhnFromMat } from './svhn.ts';
import { writeMat, type MatVariable } from './testing/mat-writer.ts';

const H = 4,
  W = 3,
  N = 5;
/** Pixel value for (row, col, channel, image), distinct for every position so a scrambled layout cannot pass. */
const pixel = (r: number, c: number, ch: number, n: number) => (r * 37 + c * 11 + ch * 83 + n * 5) % 256;

function svhnVars(yStorage: 'uint8' | 'double', labels = [1, 2, 10, 7, 10]): MatVariable[] {
  const X: number[] = new Array(H * W * 3 * N);
  for (let n = 0; n < N; n++)
    for (let ch = 0; ch < 3; ch++)
      for (let c = 0; c < W; c++)
        for (let r = 0; r < H; r++) {
          X[r + H * c + H * W * ch + H * W * 3 * n] = pixel(r, c, ch, n); // column-major, as MATLAB stores it
        }
  return [
    { name: 'X', className: 'uint8', dims: [H, W, 3, N], storage: 'uint8', values: X },
    { name: 'y', className: 'double', dims: [N, 1], storage: yStorage, values: labels },
  ];
}

for (const compress of [false, true]) {
  for (const yStorage of ['uint8', 'double'] as const) {
    test(`reads SVHN-layout variables (${compress ? 'compressed' : 'uncompressed'}, y stored as ${yStorage})`, () => {
      const set = svhnFromMat(writeMat(svhnVars(yStorage), compress), 'svhn/mini');
      assert.equal(set.count, N);
      assert.equal(set.height, H);
      assert.equal(set.width, W);
      assert.equal(set.channels, 3);
      assert.deepEqual([...set.labels], [1, 2, 0, 7, 0]);
      for (let n = 0; n < N; n++)
        for (let r = 0; r < H; r++)
          for (let c = 0; c < W; c++)
            for (let ch = 0; ch < 3; ch++) {
              assert.equal(set.images[((n * H + r) * W + c) * 3 + ch], pixel(r, c, ch, n));
            }
    });
  }
}

test('keeps the class of a variable stored in a smaller type', () => {
  const vars = readMat(writeMat(svhnVars('uint8'), false));
  const y = vars.get('y')!;
  assert.equal(y.className, 'double');
  assert.ok(y.data instanceof Float64Array);
  assert.deepEqual(y.dims, [N, 1]);
});

test('rejects truncated, corrupt, v7.3 and incomplete files with one sentence', () => {
  const good = writeMat(svhnVars('double'), false);
  assert.throws(() => readMat(good.subarray(0, good.length - 9), 'f.mat'), /f\.mat: file is truncated/);
  const packed = writeMat(svhnVars('double'), true);
  const broken = Buffer.from(packed);
  broken.fill(0xaa, 140, 180);
  assert.throws(() => readMat(broken, 'f.mat'), /does not decompress|corrupt/);
  const v73 = Buffer.from(good);
  v73.write('MATLAB 7.3 MAT-file', 0, 'latin1');
  assert.throws(() => readMat(v73, 'f.mat'), /v7\.3 \(HDF5\) is not supported/);
  assert.throws(() => readMat(Buffer.alloc(200), 'f.mat'), /not a MATLAB MAT-file/);
  assert.throws(() => svhnFromMat(writeMat(svhnVars('double').slice(0, 1), false), 's'), /variable "y" is missing/);
  assert.throws(
    () => svhnFromMat(writeMat(svhnVars('double', [1, 2, 11, 3, 4]), false), 's'),
    /label 11 at index 2 is not 1-10/,
  );
});
