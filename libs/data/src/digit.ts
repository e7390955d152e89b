import { INPUT_SIZE, preprocessImage, resizeBilinear } from './preprocess.ts';

/** Pixels as a canvas gives them: RGBA, row-major. */
export interface RgbaImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array | Uint8ClampedArray;
}

export interface PreparedDigit {
  /** 28x28 grey, ink bright on black, fitted and centred as MNIST's digits were. */
  readonly mnist: Uint8Array;
  /** The model's input (PREPROCESSING applied to `mnist`): NHWC float32. */
  readonly input: Float32Array;
  /** True when the background was light (dark ink), so the image was inverted. */
  readonly inverted: boolean;
  /** True when no ink was found (blank or uniform image): `mnist` is all zero. */
  readonly empty: boolean;
}

/** How MNIST was made (LeCun et al.): digits fitted into a 20x20 box, placed by centre of mass in 28x28. */
export const DIGIT_PREPARATION = {
  canvas: 28,
  box: 20,
  description: 'grey (alpha over white), light backgrounds inverted, background removed and contrast stretched, cropped to the ink, fitted into 20x20 keeping the aspect ratio, centred by centre of mass in 28x28',
} as const;

/** Ink weaker than this fraction of the strongest does not count for the crop (noise, JPEG ringing). */
const CROP_THRESHOLD = 0.2;
/** Less contrast than this (of 255) between ink and background means there is no digit. */
const MIN_CONTRAST = 24;

/** Luminance per pixel, transparent pixels composited over white (a blank canvas or page). */
function toGrey(img: RgbaImage): Float32Array {
  const { width: w, height: h, data } = img;
  if (!(w > 0 && h > 0) || data.length !== w * h * 4) throw new Error(`an RGBA image of ${w}x${h} needs ${w * h * 4} bytes, got ${data.length}.`);
  const grey = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) {
    const a = data[i * 4 + 3] / 255;
    const lum = 0.299 * data[i * 4] + 0.587 * data[i * 4 + 1] + 0.114 * data[i * 4 + 2];
    grey[i] = a * lum + (1 - a) * 255;
  }
  return grey;
}

function median(values: number[]): number {
  const s = values.sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** Area-averaging resize (each output pixel the mean of the input area it covers): right for shrinking strokes. */
function resizeArea(src: Float32Array, w: number, h: number, outW: number, outH: number): Float32Array {
  const out = new Float32Array(outW * outH);
  const sx = w / outW, sy = h / outH;
  for (let oy = 0; oy < outH; oy++) {
    const y0 = oy * sy, y1 = y0 + sy;
    for (let ox = 0; ox < outW; ox++) {
      const x0 = ox * sx, x1 = x0 + sx;
      let sum = 0;
      for (let y = Math.floor(y0); y < Math.min(Math.ceil(y1), h); y++) {
        const wy = Math.min(y + 1, y1) - Math.max(y, y0);
        for (let x = Math.floor(x0); x < Math.min(Math.ceil(x1), w); x++) sum += wy * (Math.min(x + 1, x1) - Math.max(x, x0)) * src[y * w + x];
      }
      out[oy * outW + ox] = sum / (sx * sy);
    }
  }
  return out;
}

/**
 * Turns any picture of one digit (a drawing, a photo, a scan; light or dark background, colour or grey, any
 * size) into the 28x28 MNIST form and the model's input. The one preparation the Node CLI and the page share.
 */
export function prepareDigit(img: RgbaImage): PreparedDigit {
  const { width: w, height: h } = img;
  const grey = toGrey(img);
  const border: number[] = [];
  for (let x = 0; x < w; x++) border.push(grey[x], grey[(h - 1) * w + x]);
  for (let y = 1; y < h - 1; y++) border.push(grey[y * w], grey[y * w + w - 1]);
  const background = median(border);
  const inverted = background > 127;
  // Ink = distance from the background on the ink's side, stretched so the strongest ink is 255.
  let strongest = 0;
  const ink = grey.map((g) => {
    const v = Math.max(0, inverted ? background - g : g - background);
    strongest = Math.max(strongest, v);
    return v;
  });
  const mnist = new Uint8Array(DIGIT_PREPARATION.canvas ** 2);
  const input = new Float32Array(INPUT_SIZE);
  if (strongest < MIN_CONTRAST) {
    preprocessImage(mnist, 28, 28, 1, input);
    return { mnist, input, inverted, empty: true };
  }
  let left = w, right = -1, top = h, bottom = -1;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const v = (ink[y * w + x] *= 255 / strongest);
    if (v >= CROP_THRESHOLD * 255) {
      left = Math.min(left, x); right = Math.max(right, x);
      top = Math.min(top, y); bottom = Math.max(bottom, y);
    }
  }
  const cw = right - left + 1, ch = bottom - top + 1;
  const crop = new Float32Array(cw * ch);
  for (let y = 0; y < ch; y++) crop.set(ink.subarray((top + y) * w + left, (top + y) * w + left + cw), y * cw);
  // Fit into the 20x20 box keeping the aspect ratio.
  const scale = DIGIT_PREPARATION.box / Math.max(cw, ch);
  const fw = Math.max(1, Math.round(cw * scale)), fh = Math.max(1, Math.round(ch * scale));
  let fitted: Float32Array;
  if (scale < 1) {
    fitted = resizeArea(crop, cw, ch, fw, fh);
  } else {
    fitted = new Float32Array(fw * fh);
    resizeBilinear(Uint8Array.from(crop, (v) => Math.round(v)), ch, cw, 1, fh, fw, fitted);
  }
  // Centre of mass (in pixel indices) to pixel (14, 14), where MNIST's digits have theirs.
  let mass = 0, mx = 0, my = 0;
  for (let y = 0; y < fh; y++) for (let x = 0; x < fw; x++) {
    const v = fitted[y * fw + x];
    mass += v; mx += v * x; my += v * y;
  }
  const size = DIGIT_PREPARATION.canvas;
  const dx = Math.round(size / 2 - mx / mass), dy = Math.round(size / 2 - my / mass);
  for (let y = 0; y < fh; y++) for (let x = 0; x < fw; x++) {
    const tx = x + dx, ty = y + dy;
    if (tx >= 0 && tx < size && ty >= 0 && ty < size) mnist[ty * size + tx] = Math.min(255, Math.round(fitted[y * fw + x]));
  }
  preprocessImage(mnist, size, size, 1, input);
  return { mnist, input, inverted, empty: false };
}
