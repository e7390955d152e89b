import { createRng, mixSeed, type Rng } from './rng.ts';
import { toBytes } from './filters.ts';
import type { ImageSet } from './imageset.ts';

/** Bump when the blend or the textures change, so cached datasets are rebuilt. */
export const MNISTM_VERSION = 1;

export interface MnistMOptions {
  readonly seed: number;
  /**
   * Texture contrast in [0, 1]: how far texture colours stray from their mean.
   * Barely moves the domain gap (measured: 0.28-0.30 source-only accuracy over contrast 0.1-0.6).
   */
  readonly contrast?: number;
  /**
   * Brightest texture colour as a fraction of 255. The blend inverts the digit's polarity on bright
   * textures (dark strokes on a light ground), which is what makes MNIST-M hard for an MNIST model,
   * so this is the knob that sets the domain gap. 0.75 puts an MNIST-trained `paper` network at ~0.52
   * (the paper's source-only figure on the real MNIST-M): tools:calibrate-mnistm, see BENCHMARKS.md.
   */
  readonly brightness?: number;
  readonly name?: string;
}

export const MNISTM_DEFAULT_CONTRAST = 0.6;
export const MNISTM_DEFAULT_BRIGHTNESS = 0.75;

/** Smooth value noise in [0, 1] on an h x w grid with lattice cells of `cell` pixels. */
function valueNoise(rng: Rng, h: number, w: number, cell: number, out: Float32Array): void {
  const gw = Math.ceil(w / cell) + 2;
  const gh = Math.ceil(h / cell) + 2;
  const lattice = new Float32Array(gw * gh);
  for (let i = 0; i < lattice.length; i++) lattice[i] = rng.next();
  const ox = rng.next() * cell;
  const oy = rng.next() * cell;
  const smooth = (t: number) => t * t * (3 - 2 * t);
  for (let y = 0; y < h; y++) {
    const fy = (y + oy) / cell;
    const y0 = Math.floor(fy);
    const ty = smooth(fy - y0);
    for (let x = 0; x < w; x++) {
      const fx = (x + ox) / cell;
      const x0 = Math.floor(fx);
      const tx = smooth(fx - x0);
      const a = lattice[y0 * gw + x0],
        b = lattice[y0 * gw + x0 + 1];
      const c = lattice[(y0 + 1) * gw + x0],
        d = lattice[(y0 + 1) * gw + x0 + 1];
      out[y * w + x] = (a + (b - a) * tx) * (1 - ty) + (c + (d - c) * tx) * ty;
    }
  }
}

/**
 * A procedural colour texture (H x W x 3 floats in 0..255) standing in for the natural-photo
 * patches of the real MNIST-M: a colour field mixed by coarse noise, fine grain, and sometimes stripes.
 */
export function proceduralTexture(rng: Rng, h: number, w: number, contrast: number, brightness = 1): Float32Array {
  const coarse = new Float32Array(h * w);
  const fine = new Float32Array(h * w);
  valueNoise(rng, h, w, rng.uniform(5, 14), coarse);
  valueNoise(rng, h, w, rng.uniform(1.5, 4), fine);
  const top = 255 * brightness;
  const c0 = [rng.uniform(0, top), rng.uniform(0, top), rng.uniform(0, top)];
  const c1 = [rng.uniform(0, top), rng.uniform(0, top), rng.uniform(0, top)];
  const grain = rng.uniform(0.1, 0.5);
  const stripes =
    rng.next() < 0.3 ? { k: rng.uniform(0.3, 1.2), a: rng.uniform(0, Math.PI), amp: rng.uniform(0.1, 0.4) } : null;
  const tex = new Float32Array(h * w * 3);
  const mean = [0, 0, 0];
  for (let p = 0; p < h * w; p++) {
    let t = coarse[p] * (1 - grain) + fine[p] * grain;
    if (stripes) {
      const x = p % w,
        y = Math.floor(p / w);
      t += stripes.amp * Math.sin(stripes.k * (x * Math.cos(stripes.a) + y * Math.sin(stripes.a)));
    }
    for (let ch = 0; ch < 3; ch++) {
      const v = c0[ch] + (c1[ch] - c0[ch]) * t;
      tex[p * 3 + ch] = v;
      mean[ch] += v / (h * w);
    }
  }
  for (let i = 0; i < tex.length; i++) {
    const m = mean[i % 3];
    tex[i] = Math.min(255, Math.max(0, m + (tex[i] - m) * contrast * 1.6));
  }
  return tex;
}

/**
 * MNIST-M-style set: every grey digit blended with its own colour texture as |texture - digit|
 * per channel (the paper's MNIST-M rule). Image i depends only on (seed, i) and the digit.
 */
export function generateMnistM(mnist: ImageSet, options: MnistMOptions): ImageSet {
  if (mnist.channels !== 1)
    throw new Error(`${mnist.name}: MNIST-M needs grey digits, got ${mnist.channels} channels.`);
  const contrast = options.contrast ?? MNISTM_DEFAULT_CONTRAST;
  if (!(contrast >= 0 && contrast <= 1)) throw new Error(`MNIST-M contrast must be between 0 and 1, got ${contrast}.`);
  const brightness = options.brightness ?? MNISTM_DEFAULT_BRIGHTNESS;
  if (!(brightness > 0 && brightness <= 1)) throw new Error(`MNIST-M brightness must be in (0, 1], got ${brightness}.`);
  const { height: h, width: w, count } = mnist;
  const images = new Uint8Array(count * h * w * 3);
  const pixels = new Float32Array(h * w * 3);
  for (let i = 0; i < count; i++) {
    const rng = createRng(mixSeed(options.seed, i));
    const tex = proceduralTexture(rng, h, w, contrast, brightness);
    const digit = mnist.images.subarray(i * h * w, (i + 1) * h * w);
    for (let p = 0; p < h * w; p++) {
      for (let ch = 0; ch < 3; ch++) pixels[p * 3 + ch] = Math.abs(tex[p * 3 + ch] - digit[p]);
    }
    toBytes(pixels, images, i * pixels.length);
  }
  return {
    name: options.name ?? `mnistm/seed${options.seed}`,
    count,
    height: h,
    width: w,
    channels: 3,
    images,
    labels: mnist.labels.slice(),
  };
}
