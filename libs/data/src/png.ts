import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCanvas } from '@napi-rs/canvas';
import type { ImageSet } from './imageset.ts';

/** Image k of a set as PNG bytes at its own size (grey images as grey, colour as colour). */
export function imagePng(set: ImageSet, k: number): Buffer {
  const { width: w, height: h, channels: c } = set;
  const canvas = createCanvas(w, h);
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(w, h);
  for (let p = 0; p < w * h; p++) {
    const at = (k * w * h + p) * c;
    const [r, g, b] = c === 1 ? [set.images[at], set.images[at], set.images[at]] : set.images.subarray(at, at + 3);
    img.data.set([r, g, b, 255], p * 4);
  }
  ctx.putImageData(img, 0, 0);
  return canvas.toBuffer('image/png');
}

/**
 * Writes every image of the set into `dir` as PREFIX-INDEX-LABEL.png (the name ends in the digit it shows, which
 * edge-demo:classify scores against); returns the file paths in order.
 */
export function writeSetPngs(set: ImageSet, dir: string, prefix: string): string[] {
  mkdirSync(dir, { recursive: true });
  return Array.from({ length: set.count }, (_, k) => {
    const file = join(dir, `${prefix}-${String(k).padStart(5, '0')}-${set.labels[k]}.png`);
    writeFileSync(file, imagePng(set, k));
    return file;
  });
}
