import { INPUT_SIZE, PREPROCESSING, preprocessImage, resizeBilinear } from './preprocess.ts';

/** Pixels as a canvas gives them: RGBA, row-major. */
export interface RgbaImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array | Uint8ClampedArray;
}

export interface PreparedDigit {
  /** 28x28 grey, ink bright on black, fitted and centred as MNIST's digits were. */
  readonly mnist: Uint8Array;
  /** The model's input (PREPROCESSING applied to `mnist`, or in `frame` mode to the whole picture): NHWC float32. */
  readonly input: Float32Array;
  /** True when the background was light (dark ink), so the image was inverted (never in `frame` mode). */
  readonly inverted: boolean;
  /** True when no ink was found (blank or uniform image): `mnist` is all zero. */
  readonly empty: boolean;
  /**
   * How the picture was prepared: `ink` (a clean background: cropped to the ink, fitted and centred as MNIST) or
   * `frame` (a textured background, where no crop can be trusted: the whole picture, as is, through the model's
   * preprocessing; `mnist` then shows its luminance). A blank picture is `ink` (and `empty`).
   */
  readonly mode: 'ink' | 'frame';
}

/**
 * When a background counts as clean, so that cropping to the ink can be trusted. Measured on the picture shrunk
 * (area average, which also averages away sensor noise and JPEG ringing) to at most `side` px: of the pixels away
 * from the ink, a `fraction` at least must lie within `tolerance` x the ink's contrast (+ 2 levels) of the border's
 * median colour or of one second flat colour (a sheet on a desk, a label); the one-pixel seams between those two
 * colours do not count against it. Chosen by numbers (edge-demo's classify.test.ts measures them): about 4% of the
 * project's MNIST-M-style test pictures (textured colour backgrounds) pass, every MNIST digit passes, and so do
 * drawings on the page and photos of a digit on paper with noise of standard deviation 10 levels or a shading of
 * 15 levels across the picture (stronger shading counts as texture); digit.test.ts checks these.
 */
export const CLEAN_BACKGROUND = { side: 64, tolerance: 0.04, fraction: 0.98 } as const;

/** How MNIST was made (LeCun et al.): digits fitted into a 20x20 box, placed by centre of mass in 28x28. */
export const DIGIT_PREPARATION = {
  canvas: 28,
  box: 20,
  cleanBackground: CLEAN_BACKGROUND,
  description:
    'on a clean background (flat: one or two colours, see cleanBackground): grey (alpha over white), light backgrounds inverted, background removed and contrast stretched, cropped to the ink, fitted into 20x20 keeping the aspect ratio, centred by centre of mass in 28x28; on a textured background: the whole picture as is',
} as const;

/** Ink weaker than this fraction of the strongest does not count for the crop (noise, JPEG ringing). */
const CROP_THRESHOLD = 0.2;
/** Less contrast than this (of 255) between ink and background means there is no digit. */
const MIN_CONTRAST = 24;

/**
 * Red, green, blue per pixel (0..255), transparent pixels composited over white (a blank canvas or page); checks
 * the buffer's size.
 */
function toRgb(img: RgbaImage): Float32Array {
  const { width: w, height: h, data } = img;
  if (!(w > 0 && h > 0) || data.length !== w * h * 4)
    throw new Error(`an RGBA image of ${w}x${h} needs ${w * h * 4} bytes, got ${data.length}.`);
  const rgb = new Float32Array(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    const alpha = data[i * 4 + 3];
    if (alpha === 255) {
      rgb[i * 3] = data[i * 4];
      rgb[i * 3 + 1] = data[i * 4 + 1];
      rgb[i * 3 + 2] = data[i * 4 + 2];
    } else {
      const a = alpha / 255,
        white = (1 - a) * 255;
      for (let c = 0; c < 3; c++) rgb[i * 3 + c] = a * data[i * 4 + c] + white;
    }
  }
  return rgb;
}

/** Luminance per pixel of toRgb's output. */
function toGrey(rgb: Float32Array): Float32Array {
  const grey = new Float32Array(rgb.length / 3);
  for (let i = 0; i < grey.length; i++) grey[i] = 0.299 * rgb[i * 3] + 0.587 * rgb[i * 3 + 1] + 0.114 * rgb[i * 3 + 2];
  return grey;
}

function median(values: number[]): number {
  const s = values.sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** The indices of the pixels on the picture's edge. */
function borderIndices(w: number, h: number): number[] {
  const b: number[] = [];
  for (let x = 0; x < w; x++) b.push(x, (h - 1) * w + x);
  for (let y = 1; y < h - 1; y++) b.push(y * w, y * w + w - 1);
  return b;
}

/**
 * The share of the background (pixels not within one pixel of the ink) that is flat: within the tolerance of the
 * border's median colour or of the median colour of the rest, or a seam between the two (see CLEAN_BACKGROUND).
 * 1 for a uniform or blank picture.
 */
export function backgroundFlatness(img: RgbaImage): number {
  return inspectBackground(toRgb(img), img.width, img.height).flatness;
}

/** backgroundFlatness, and the colour contrast (0..255, largest channel difference from the border's colour) it saw. */
function inspectBackground(full: Float32Array, W: number, H: number): { flatness: number; contrast: number } {
  const { side, tolerance } = CLEAN_BACKGROUND;
  const s = Math.min(1, side / Math.max(W, H));
  const w = Math.max(1, Math.round(W * s)),
    h = Math.max(1, Math.round(H * s)),
    n = w * h;
  const rgb = s < 1 ? resizeArea(full, W, H, w, h, 3) : full;
  const colourOf = (indices: number[]) => [0, 1, 2].map((c) => median(indices.map((i) => rgb[i * 3 + c])));
  const distance = (i: number, col: number[]) =>
    Math.max(Math.abs(rgb[i * 3] - col[0]), Math.abs(rgb[i * 3 + 1] - col[1]), Math.abs(rgb[i * 3 + 2] - col[2]));
  const first = colourOf(borderIndices(w, h));
  const dev = new Float32Array(n);
  let contrast = 0;
  for (let i = 0; i < n; i++) contrast = Math.max(contrast, (dev[i] = distance(i, first)));
  if (contrast < MIN_CONTRAST) return { flatness: 1, contrast };
  // Ink: more than half the contrast away from the background, grown by one pixel (its anti-aliased edge).
  const near = new Uint8Array(n);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      if (dev[y * w + x] <= 0.5 * contrast) continue;
      for (let yy = Math.max(0, y - 1); yy <= Math.min(h - 1, y + 1); yy++)
        for (let xx = Math.max(0, x - 1); xx <= Math.min(w - 1, x + 1); xx++) near[yy * w + xx] = 1;
    }
  const tol = tolerance * contrast + 2;
  const background: number[] = [],
    rest: number[] = [];
  for (let i = 0; i < n; i++) {
    if (near[i]) continue;
    background.push(i);
    if (dev[i] > tol) rest.push(i);
  }
  if (rest.length === 0) return { flatness: 1, contrast };
  const second = colourOf(rest);
  // 1: the first flat colour, 2: the second, 0: neither.
  const flat = new Uint8Array(n);
  for (let i = 0; i < n; i++) flat[i] = dev[i] <= tol ? 1 : distance(i, second) <= tol ? 2 : 0;
  let rough = 0;
  for (const i of rest) {
    if (flat[i]) continue;
    const x = i % w,
      y = (i - x) / w;
    let seen = 0;
    for (let yy = Math.max(0, y - 1); yy <= Math.min(h - 1, y + 1); yy++)
      for (let xx = Math.max(0, x - 1); xx <= Math.min(w - 1, x + 1); xx++) seen |= flat[yy * w + xx];
    if (seen !== 3) rough++;
  }
  return { flatness: 1 - rough / background.length, contrast };
}

/**
 * For each output position along one axis of length `n` shrunk to `out`: the first input position it covers, and
 * the weights (summing to 1) of the `span` input positions from there (zero past its own area).
 */
function areaWeights(n: number, out: number): { first: Int32Array; span: number; weights: Float32Array } {
  const scale = n / out,
    span = Math.ceil(scale) + 1;
  const first = new Int32Array(out),
    weights = new Float32Array(out * span);
  for (let o = 0; o < out; o++) {
    const a = o * scale,
      b = a + scale,
      lo = Math.floor(a),
      hi = Math.min(Math.ceil(b), n);
    first[o] = lo;
    for (let k = 0; k < hi - lo; k++) weights[o * span + k] = (Math.min(lo + k + 1, b) - Math.max(lo + k, a)) / scale;
  }
  return { first, span, weights };
}

/**
 * Area-averaging resize (each output pixel the mean of the input area it covers): right for shrinking strokes.
 * Separable (rows, then columns), so its cost is about two passes over the input.
 */
function resizeArea(src: Float32Array, w: number, h: number, outW: number, outH: number, channels = 1): Float32Array {
  const cols = areaWeights(w, outW),
    rows = areaWeights(h, outH);
  const across = new Float32Array(h * outW * channels);
  for (let y = 0; y < h; y++)
    for (let ox = 0; ox < outW; ox++) {
      const x0 = cols.first[ox],
        o = (y * outW + ox) * channels,
        n = Math.min(cols.span, w - x0);
      for (let k = 0; k < n; k++) {
        const wk = cols.weights[ox * cols.span + k],
          i = (y * w + x0 + k) * channels;
        for (let c = 0; c < channels; c++) across[o + c] += wk * src[i + c];
      }
    }
  const out = new Float32Array(outW * outH * channels),
    stride = outW * channels;
  for (let oy = 0; oy < outH; oy++) {
    const y0 = rows.first[oy],
      n = Math.min(rows.span, h - y0);
    for (let k = 0; k < n; k++) {
      const wk = rows.weights[oy * rows.span + k],
        row = (y0 + k) * stride,
        o = oy * stride;
      for (let j = 0; j < stride; j++) out[o + j] += wk * across[row + j];
    }
  }
  return out;
}

/**
 * The whole picture as is, for textured backgrounds: what the model's preprocessing makes of it (pictures larger
 * than its 32x32 input are area-averaged down first, so that a big photo is not aliased by the bilinear resize).
 */
function wholeFrame(rgb: Float32Array, W: number, H: number): PreparedDigit {
  const w = Math.min(W, PREPROCESSING.width),
    h = Math.min(H, PREPROCESSING.height);
  const shrunk = w === W && h === H ? rgb : resizeArea(rgb, W, H, w, h, 3);
  const pixels = Uint8Array.from(shrunk, (v) => Math.round(v));
  const input = new Float32Array(INPUT_SIZE);
  preprocessImage(pixels, h, w, 3, input);
  const grey = Uint8Array.from({ length: w * h }, (_, i) =>
    Math.round(0.299 * shrunk[i * 3] + 0.587 * shrunk[i * 3 + 1] + 0.114 * shrunk[i * 3 + 2]),
  );
  const size = DIGIT_PREPARATION.canvas;
  const view = new Float32Array(size * size);
  resizeBilinear(grey, h, w, 1, size, size, view);
  return { mnist: Uint8Array.from(view, (v) => Math.round(v)), input, inverted: false, empty: false, mode: 'frame' };
}

/**
 * Turns any picture of one digit (a drawing, a photo, a scan; light or dark background, colour or grey, any
 * size) into the 28x28 MNIST form and the model's input. The one preparation the Node CLI and the page share.
 *
 * Cropping to the ink needs a clean background: on a textured one (a photo of a digit on a patterned surface, the
 * MNIST-M-style set) the texture counts as ink and the crop cuts the picture wrongly, so such pictures are given to
 * the model whole, as they are (`mode: 'frame'`; see CLEAN_BACKGROUND for the test and the numbers behind it).
 */
export function prepareDigit(img: RgbaImage): PreparedDigit {
  const { width: w, height: h } = img;
  const rgb = toRgb(img);
  const grey = toGrey(rgb);
  const border: number[] = [];
  for (let x = 0; x < w; x++) border.push(grey[x], grey[(h - 1) * w + x]);
  for (let y = 1; y < h - 1; y++) border.push(grey[y * w], grey[y * w + w - 1]);
  const background = median(border);
  const inverted = background > 127;
  // Ink = distance from the background on the ink's side, stretched so the strongest ink is 255.
  let strongest = 0;
  const ink = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) {
    const v = Math.max(0, inverted ? background - grey[i] : grey[i] - background);
    if (v > strongest) strongest = v;
    ink[i] = v;
  }
  // A textured background, or a digit that differs from its background in colour but hardly in brightness (no
  // grey ink to crop to): the whole picture as it is.
  const scene = inspectBackground(rgb, w, h);
  if (scene.contrast >= MIN_CONTRAST && (scene.flatness < CLEAN_BACKGROUND.fraction || strongest < MIN_CONTRAST))
    return wholeFrame(rgb, w, h);
  const mnist = new Uint8Array(DIGIT_PREPARATION.canvas ** 2);
  const input = new Float32Array(INPUT_SIZE);
  if (strongest < MIN_CONTRAST) {
    preprocessImage(mnist, 28, 28, 1, input);
    return { mnist, input, inverted, empty: true, mode: 'ink' };
  }
  let left = w,
    right = -1,
    top = h,
    bottom = -1;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const v = (ink[y * w + x] *= 255 / strongest);
      if (v >= CROP_THRESHOLD * 255) {
        left = Math.min(left, x);
        right = Math.max(right, x);
        top = Math.min(top, y);
        bottom = Math.max(bottom, y);
      }
    }
  const cw = right - left + 1,
    ch = bottom - top + 1;
  const crop = new Float32Array(cw * ch);
  for (let y = 0; y < ch; y++) crop.set(ink.subarray((top + y) * w + left, (top + y) * w + left + cw), y * cw);
  // Fit into the 20x20 box keeping the aspect ratio.
  const scale = DIGIT_PREPARATION.box / Math.max(cw, ch);
  const fw = Math.max(1, Math.round(cw * scale)),
    fh = Math.max(1, Math.round(ch * scale));
  let fitted: Float32Array;
  if (scale < 1) {
    fitted = resizeArea(crop, cw, ch, fw, fh);
  } else {
    fitted = new Float32Array(fw * fh);
    resizeBilinear(
      Uint8Array.from(crop, (v) => Math.round(v)),
      ch,
      cw,
      1,
      fh,
      fw,
      fitted,
    );
  }
  // Centre of mass (in pixel indices) to pixel (14, 14), where MNIST's digits have theirs.
  let mass = 0,
    mx = 0,
    my = 0;
  for (let y = 0; y < fh; y++)
    for (let x = 0; x < fw; x++) {
      const v = fitted[y * fw + x];
      mass += v;
      mx += v * x;
      my += v * y;
    }
  const size = DIGIT_PREPARATION.canvas;
  const dx = Math.round(size / 2 - mx / mass),
    dy = Math.round(size / 2 - my / mass);
  for (let y = 0; y < fh; y++)
    for (let x = 0; x < fw; x++) {
      const tx = x + dx,
        ty = y + dy;
      if (tx >= 0 && tx < size && ty >= 0 && ty < size)
        mnist[ty * size + tx] = Math.min(255, Math.round(fitted[y * fw + x]));
    }
  preprocessImage(mnist, size, size, 1, input);
  return { mnist, input, inverted, empty: false, mode: 'ink' };
}
