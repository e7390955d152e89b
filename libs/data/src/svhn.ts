import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readMat, type MatArray } from './mat.ts';
import { validateImageSet, type ImageSet } from './imageset.ts';
import type { Split } from './mnist.ts';

export const SVHN_FILES: Record<Split, string> = { train: 'train_32x32.mat', test: 'test_32x32.mat' };

function variable(vars: Map<string, MatArray>, key: string, what: string): MatArray {
  const v = vars.get(key);
  if (!v) throw new Error(`${what}: variable "${key}" is missing (found: ${[...vars.keys()].join(', ') || 'none'}).`);
  return v;
}

/**
 * Converts the official cropped-digit arrays (X: 32x32x3xN uint8 column-major, y: Nx1 with 10 meaning 0)
 * into an ImageSet with images stored N x 32 x 32 x 3.
 */
export function svhnFromMat(buf: Uint8Array, name: string): ImageSet {
  const vars = readMat(buf, name);
  const X = variable(vars, 'X', name);
  const y = variable(vars, 'y', name);
  if (X.dims.length !== 4 || X.dims[2] !== 3)
    throw new Error(`${name}: X has dimensions ${X.dims.join('x')}, expected HxWx3xN.`);
  const [h, w, c, n] = X.dims;
  const labelCount = y.dims.reduce((a, b) => a * b, 1);
  if (labelCount !== n) throw new Error(`${name}: X holds ${n} images but y holds ${labelCount} labels.`);
  const src = X.data;
  const images = new Uint8Array(n * h * w * c);
  const plane = h * w;
  for (let i = 0; i < n; i++) {
    const base = i * plane * c;
    for (let col = 0; col < w; col++) {
      for (let row = 0; row < h; row++) {
        const o = base + (row * w + col) * c;
        const s = base + col * h + row;
        for (let ch = 0; ch < c; ch++) images[o + ch] = Number(src[s + ch * plane]);
      }
    }
  }
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const v = Number(y.data[i]);
    if (!Number.isInteger(v) || v < 1 || v > 10)
      throw new Error(`${name}: label ${v} at index ${i} is not 1-10 (10 means digit 0).`);
    labels[i] = v % 10;
  }
  return validateImageSet({ name, count: n, height: h, width: w, channels: 3, images, labels });
}

/** SVHN cropped digits from `dir` (where `tools:download-data -- svhn` puts them). */
export function loadSvhn(split: Split, dir: string): ImageSet {
  const file = join(dir, SVHN_FILES[split]);
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch {
    throw new Error(
      `svhn/${split}: ${file} is missing; run \`npx nx run tools:download-data -- svhn\` on a machine with internet access, or copy the file there.`,
    );
  }
  return svhnFromMat(buf, `svhn/${split}`);
}
