import type { Rng } from './rng.ts';

/**
 * Random geometric and photometric changes of a training image, as self-ensembling and SHOT use them
 * (French et al. 2018, Liang et al. 2020): rotation, scale, shear and shift drawn uniformly within these bounds,
 * then Gaussian noise. Applied to the resized image in [0, 1] before standardisation.
 */
export interface Augmentation {
  /** Largest rotation, radians. */
  readonly rotation: number;
  /** Largest relative change of scale. */
  readonly scale: number;
  /** Largest horizontal shear. */
  readonly shear: number;
  /** Largest shift, pixels of the 32x32 input. */
  readonly shift: number;
  /** Standard deviation of the added noise, in [0, 1] units. */
  readonly noise: number;
  /**
   * Random colour: each channel's [0, 1] intensities are mapped linearly onto [lo, hi], lo and hi drawn uniformly
   * in [0, 1] per channel and image, so brightness, contrast and polarity change per channel (a grey digit becomes
   * any colour on any ground). For grey sources and colour targets such as MNIST-M.
   */
  readonly colour?: boolean;
}

/**
 * affine: self-ensembling's small changes. strong: more rotation and shear, which covers the slant that deslanted
 * sources such as USPS lack (USPS -> MNIST source-only 0.958 -> 0.979 on the exp13 branch, 30c0f29).
 */
const AFFINE = { rotation: (10 * Math.PI) / 180, scale: 0.1, shear: 0.1, shift: 2.3, noise: 0.05 };
export const AUGMENTATIONS = {
  affine: AFFINE,
  strong: { ...AFFINE, rotation: (15 * Math.PI) / 180, shear: 0.3 },
  colour: { ...AFFINE, colour: true },
} as const satisfies Record<string, Augmentation>;
export type AugmentationName = keyof typeof AUGMENTATIONS;
export const AUGMENTATION_NAMES = Object.keys(AUGMENTATIONS) as AugmentationName[];

/**
 * Warps one H x W x C image in place (bilinear, pixels outside the image take the nearest edge pixel, so a
 * coloured background stays coloured), then adds noise. `scratch` holds at least H x W x C floats.
 */
export function augmentImage(
  image: Float32Array,
  h: number,
  w: number,
  c: number,
  rng: Rng,
  a: Augmentation,
  scratch: Float32Array,
): void {
  const n = h * w * c;
  if (a.colour) {
    for (let ch = 0; ch < c; ch++) {
      const lo = rng.next(),
        hi = rng.next();
      for (let i = ch; i < n; i += c) image[i] = lo + (hi - lo) * image[i];
    }
  }
  const angle = rng.uniform(-a.rotation, a.rotation);
  const scale = 1 + rng.uniform(-a.scale, a.scale);
  const shear = rng.uniform(-a.shear, a.shear);
  const dx = rng.uniform(-a.shift, a.shift),
    dy = rng.uniform(-a.shift, a.shift);
  // Output pixel (x, y) about the centre reads the input at M^-1 (x - t): M = rotation x shear x scale.
  const cos = Math.cos(angle),
    sin = Math.sin(angle);
  const m00 = scale * cos,
    m01 = scale * (cos * shear - sin),
    m10 = scale * sin,
    m11 = scale * (sin * shear + cos);
  const det = m00 * m11 - m01 * m10;
  const i00 = m11 / det,
    i01 = -m01 / det,
    i10 = -m10 / det,
    i11 = m00 / det;
  const cx = (w - 1) / 2,
    cy = (h - 1) / 2;
  scratch.set(image.subarray(0, n));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const ox = x - cx - dx,
        oy = y - cy - dy;
      const sx = Math.min(Math.max(i00 * ox + i01 * oy + cx, 0), w - 1);
      const sy = Math.min(Math.max(i10 * ox + i11 * oy + cy, 0), h - 1);
      const x0 = Math.floor(sx),
        y0 = Math.floor(sy);
      const x1 = Math.min(x0 + 1, w - 1),
        y1 = Math.min(y0 + 1, h - 1);
      const fx = sx - x0,
        fy = sy - y0;
      for (let ch = 0; ch < c; ch++) {
        const p = (yy: number, xx: number) => scratch[(yy * w + xx) * c + ch];
        const top = p(y0, x0) + (p(y0, x1) - p(y0, x0)) * fx;
        const bottom = p(y1, x0) + (p(y1, x1) - p(y1, x0)) * fx;
        image[(y * w + x) * c + ch] = top + (bottom - top) * fy + a.noise * rng.normal();
      }
    }
  }
}
