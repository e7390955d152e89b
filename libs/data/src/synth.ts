import { createCanvas, type SKRSContext2D } from '@napi-rs/canvas';
import { createRng, mixSeed, type Rng } from './rng.ts';
import { loadSynthFonts, type SynthFont, type SynthFontSet } from './fonts.ts';
import { gaussianBlur, toBytes } from './filters.ts';
import type { ImageSet } from './imageset.ts';

/** Bump when the renderer changes, so cached datasets are rebuilt. */
export const SYNTH_VERSION = 1;
export const SYNTH_SIZE = 32;

export interface SynthOptions {
  readonly count: number;
  readonly seed: number;
  /** Name used in errors and previews, e.g. "synth/train". */
  readonly name?: string;
  /** The fonts drawn from; default printed. */
  readonly fonts?: SynthFontSet;
}

type Rgb = [number, number, number];

const luminance = ([r, g, b]: Rgb) => 0.299 * r + 0.587 * g + 0.114 * b;
const css = ([r, g, b]: Rgb) => `rgb(${r | 0},${g | 0},${b | 0})`;
const randomColour = (rng: Rng): Rgb => [rng.int(256), rng.int(256), rng.int(256)];

/** A foreground/background pair with at least a minimum luminance contrast, as on real house numbers. */
function colours(rng: Rng): { fg: Rgb; bg: Rgb } {
  const minContrast = rng.uniform(35, 110);
  for (;;) {
    const fg = randomColour(rng);
    const bg = randomColour(rng);
    if (Math.abs(luminance(fg) - luminance(bg)) >= minContrast) return { fg, bg };
  }
}

function drawDigit(ctx: SKRSContext2D, digit: number, x: number, baselineShift: number): number {
  const text = String(digit);
  const m = ctx.measureText(text);
  ctx.fillText(text, x, baselineShift);
  return m.width;
}

function renderOne(ctx: SKRSContext2D, rng: Rng, fonts: SynthFont[], label: number, out: Float32Array): void {
  const S = SYNTH_SIZE;
  const { fg, bg } = colours(rng);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  if (rng.next() < 0.5) {
    const bg2 = bg.map((v) => Math.min(255, Math.max(0, v + rng.uniform(-60, 60)))) as Rgb;
    const angle = rng.uniform(0, Math.PI);
    const grad = ctx.createLinearGradient(
      16 - 16 * Math.cos(angle),
      16 - 16 * Math.sin(angle),
      16 + 16 * Math.cos(angle),
      16 + 16 * Math.sin(angle),
    );
    grad.addColorStop(0, css(bg));
    grad.addColorStop(1, css(bg2));
    ctx.fillStyle = grad;
  } else {
    ctx.fillStyle = css(bg);
  }
  ctx.fillRect(0, 0, S, S);

  const font = rng.pick(fonts);
  const size = rng.uniform(17, 30);
  ctx.font = `${font.weight} ${size.toFixed(2)}px ${font.family}`;
  ctx.textAlign = 'left';
  ctx.textBaseline = 'alphabetic';
  ctx.fillStyle = css(fg);
  if (rng.next() < 0.2) {
    ctx.strokeStyle = css(randomColour(rng));
    ctx.lineWidth = rng.uniform(0.5, 1.5);
  }
  const stroke = rng.next() < 0.2;

  const metrics = ctx.measureText(String(label));
  const width = metrics.width;
  const ascent = metrics.actualBoundingBoxAscent;
  const descent = metrics.actualBoundingBoxDescent;
  ctx.translate(S / 2 + rng.uniform(-2.5, 2.5), S / 2 + rng.uniform(-2.5, 2.5));
  ctx.rotate(rng.uniform(-0.25, 0.25));
  ctx.transform(rng.uniform(0.8, 1.2), 0, rng.uniform(-0.2, 0.2), 1, 0, 0); // horizontal scale and shear (italic-like)
  const baseline = (ascent - descent) / 2;
  drawDigit(ctx, label, -width / 2, baseline);
  if (stroke) ctx.strokeText(String(label), -width / 2, baseline);
  // Neighbouring digits, partly visible at the sides, as in cropped house numbers.
  const gap = rng.uniform(0, 3);
  if (rng.next() < 0.6) {
    const d = rng.int(10);
    const w = ctx.measureText(String(d)).width;
    drawDigit(ctx, d, -width / 2 - gap - w, baseline);
  }
  if (rng.next() < 0.6) {
    const d = rng.int(10);
    drawDigit(ctx, d, width / 2 + gap, baseline);
  }

  const rgba = ctx.getImageData(0, 0, S, S).data;
  for (let p = 0; p < S * S; p++) {
    out[p * 3] = rgba[p * 4];
    out[p * 3 + 1] = rgba[p * 4 + 1];
    out[p * 3 + 2] = rgba[p * 4 + 2];
  }
  if (rng.next() < 0.7) gaussianBlur(out, S, S, 3, rng.uniform(0.2, 1.2));
  const noise = rng.uniform(0, 12);
  for (let i = 0; i < out.length; i++) out[i] += noise * rng.normal();
}

/**
 * SynDigits: printed digits in the spirit of the DANN paper's SynNumbers, 32x32x3.
 * Image i depends only on (seed, i), so any prefix or slice of a set is reproducible on its own.
 */
export function generateSynthDigits(options: SynthOptions): ImageSet {
  const { count, seed } = options;
  const fonts = loadSynthFonts(options.fonts);
  const S = SYNTH_SIZE;
  const canvas = createCanvas(S, S);
  const ctx = canvas.getContext('2d');
  const images = new Uint8Array(count * S * S * 3);
  const labels = new Uint8Array(count);
  const pixels = new Float32Array(S * S * 3);
  for (let i = 0; i < count; i++) {
    const rng = createRng(mixSeed(seed, i));
    const label = rng.int(10);
    labels[i] = label;
    ctx.save();
    renderOne(ctx, rng, fonts, label, pixels);
    ctx.restore();
    toBytes(pixels, images, i * pixels.length);
  }
  return { name: options.name ?? `synth/seed${seed}`, count, height: S, width: S, channels: 3, images, labels };
}
