import { augmentImage, type Augmentation } from './augment.ts';
import type { ImageSet } from './imageset.ts';
import { createRng, mixSeed } from './rng.ts';

/**
 * The one input definition shared by training, export metadata, the Node CLI and the browser page:
 * resize to 32x32 (bilinear, half-pixel centres), grey replicated to 3 channels, scale to [0, 1],
 * then per-image standardisation ((x - mean) / max(std, 1/sqrt(N)), as tf.image.per_image_standardization).
 * Layout: NHWC float32.
 */
export const PREPROCESSING = {
  height: 32,
  width: 32,
  channels: 3,
  layout: 'NHWC',
  resize: 'bilinear-half-pixel',
  scale: 1 / 255,
  normalization: 'per-image-standardization',
} as const;

export type Preprocessing = typeof PREPROCESSING;
export const INPUT_SIZE = PREPROCESSING.height * PREPROCESSING.width * PREPROCESSING.channels;

/** Bilinear resize of one H x W x C uint8 image to outH x outW x C floats (half-pixel centres, edge clamp). */
export function resizeBilinear(
  src: Uint8Array,
  h: number,
  w: number,
  c: number,
  outH: number,
  outW: number,
  out: Float32Array,
  offset = 0,
): void {
  const sy = h / outH;
  const sx = w / outW;
  for (let y = 0; y < outH; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), h - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, h - 1);
    const wy = fy - y0;
    for (let x = 0; x < outW; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), w - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, w - 1);
      const wx = fx - x0;
      for (let ch = 0; ch < c; ch++) {
        const a = src[(y0 * w + x0) * c + ch],
          b = src[(y0 * w + x1) * c + ch];
        const d = src[(y1 * w + x0) * c + ch],
          e = src[(y1 * w + x1) * c + ch];
        out[offset + (y * outW + x) * c + ch] = (a + (b - a) * wx) * (1 - wy) + (d + (e - d) * wx) * wy;
      }
    }
  }
}

/** A training image's random change: its parameters and the generator of this image's draws. */
export interface AugmentDraw {
  readonly augmentation: Augmentation;
  readonly rng: ReturnType<typeof createRng>;
  readonly scratch: Float32Array;
}

/**
 * Preprocesses one image (H x W x C uint8, C = 1 or 3) into `out` at `offset`
 * (PREPROCESSING.height x width x channels floats); `augment` changes it after resizing, before standardisation.
 */
export function preprocessImage(
  src: Uint8Array,
  h: number,
  w: number,
  c: number,
  out: Float32Array,
  offset = 0,
  augment?: AugmentDraw,
): void {
  const { height: H, width: W, channels: C } = PREPROCESSING;
  if (c !== 1 && c !== 3) throw new Error(`preprocessing takes 1 or 3 channels, got ${c}.`);
  if (src.length !== h * w * c)
    throw new Error(`preprocessing: ${src.length} bytes do not make a ${h}x${w}x${c} image.`);
  const n = H * W * C;
  if (h === H && w === W) {
    for (let p = 0; p < H * W; p++)
      for (let ch = 0; ch < C; ch++) out[offset + p * C + ch] = src[p * c + (c === 1 ? 0 : ch)];
  } else if (c === 1) {
    const grey = new Float32Array(H * W);
    resizeBilinear(src, h, w, 1, H, W, grey);
    for (let p = 0; p < H * W; p++) for (let ch = 0; ch < C; ch++) out[offset + p * C + ch] = grey[p];
  } else {
    resizeBilinear(src, h, w, 3, H, W, out, offset);
  }
  for (let i = 0; i < n; i++) out[offset + i] *= PREPROCESSING.scale;
  if (augment)
    augmentImage(out.subarray(offset, offset + n), H, W, C, augment.rng, augment.augmentation, augment.scratch);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += out[offset + i];
  const mean = sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) sq += (out[offset + i] - mean) ** 2;
  const std = Math.max(Math.sqrt(sq / n), 1 / Math.sqrt(n));
  for (let i = 0; i < n; i++) out[offset + i] = (out[offset + i] - mean) / std;
}

/**
 * Preprocesses the images at `indices` into one NHWC batch (a new array, or `out` if given). With `augment`, each
 * image gets its own random change, drawn from (seed, its index): the same whichever batch or shard it is in.
 */
export function preprocessBatch(
  set: ImageSet,
  indices: ArrayLike<number>,
  out: Float32Array = new Float32Array(indices.length * INPUT_SIZE),
  augment?: { readonly augmentation: Augmentation; readonly seed: number },
): Float32Array {
  const size = set.height * set.width * set.channels;
  const scratch = augment ? new Float32Array(INPUT_SIZE) : undefined;
  for (let i = 0; i < indices.length; i++) {
    const k = indices[i];
    if (!(k >= 0 && k < set.count)) throw new Error(`${set.name}: index ${k} is outside 0..${set.count - 1}.`);
    preprocessImage(
      set.images.subarray(k * size, (k + 1) * size),
      set.height,
      set.width,
      set.channels,
      out,
      i * INPUT_SIZE,
      augment && { augmentation: augment.augmentation, rng: createRng(mixSeed(augment.seed, k)), scratch: scratch! },
    );
  }
  return out;
}
