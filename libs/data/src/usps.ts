import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { validateImageSet, type ImageSet } from './imageset.ts';
import type { Split } from './mnist.ts';

/**
 * USPS handwritten digits as distributed with The Elements of Statistical Learning ("zip" data):
 * gzip text, one digit per line, a label (written "6.0000" in the training file, "6" in the test file)
 * then 256 grey values in [-1, 1], 16x16 row-major, -1 the background and 1 full ink.
 */
export const USPS_SIZE = 16;
/**
 * USPS digits fill their 16x16 frame; MNIST's sit in a 20x20 box centred in 28x28. The loader puts each USPS
 * digit in a 22x22 frame (3 background pixels on every side), so that after resizing to the network's 32x32 both
 * domains' digits have the same size: source-only USPS -> MNIST 0.79 unpadded, 0.96 padded (seed 1, 10 epochs,
 * BENCHMARKS.md). Domain knowledge of the two formats, no target labels.
 */
export const USPS_PAD = 3;
export const USPS_FRAME = USPS_SIZE + 2 * USPS_PAD;
export const USPS_FILES: Record<Split, string> = { train: 'zip.train.gz', test: 'zip.test.gz' };
export const USPS_COUNTS: Record<Split, number> = { train: 7291, test: 2007 };
/** SHA-256 of the published files (hastie.su.domains/ElemStatLearn/datasets/). */
export const USPS_SHA256: Record<Split, string> = {
  train: '66ebf231ab51f2cf6ac1a892d0f98ccffee1079d7a5db638c1f11f366046ca16',
  test: '8dacc3c6e136af6c3488de9e5113a7daf140c8c2f1f0b61c54ee02f03f1a962f',
};
export const USPS_BYTES: Record<Split, number> = { train: 1_829_071, test: 439_208 };

const FIELDS = 1 + USPS_SIZE * USPS_SIZE;
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * One ESL value in [-1, 1] as a uint8 pixel: -1 (background) -> 0, 1 (ink) -> 255, so USPS digits are light
 * strokes on a dark background like MNIST's.
 */
export function uspsPixel(value: number): number {
  return Math.round((value + 1) * 127.5);
}

/** How to get the files, for error messages. */
export function uspsHowToGet(): string {
  return 'run `npx nx run tools:download-data -- usps` on a machine with internet access, or `npx nx run tools:download-data -- usps --from DIR` with a folder holding zip.train.gz and zip.test.gz (or set DANN_DATA_DIR to a folder whose usps/ holds them)';
}

/**
 * Parses the text of an ESL zip file into a grey ImageSet of 16x16 digits in 22x22 frames (USPS_PAD). Every line is checked (field count, label 0-9,
 * values in [-1, 1]); the first bad one throws one sentence naming `file` and the line, and no partial set is returned.
 * `expectedCount` (the published digit count) makes a missing or extra line an error too.
 */
export function uspsFromText(text: string, file: string, name: string, expectedCount?: number): ImageSet {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1].trim() === '') lines.pop();
  const n = lines.length;
  if (n === 0) throw new Error(`${file}: holds no digits.`);
  if (expectedCount !== undefined && n !== expectedCount) {
    throw new Error(
      `${file}: holds ${n} lines, expected ${expectedCount} digits; the file is incomplete or not the published one.`,
    );
  }
  const size = USPS_SIZE * USPS_SIZE;
  const frame = USPS_FRAME * USPS_FRAME;
  const images = new Uint8Array(n * frame);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const where = `${file} line ${i + 1}`;
    const line = lines[i].trim();
    const fields = line === '' ? [] : line.split(/\s+/);
    if (fields.length !== FIELDS) {
      throw new Error(`${where}: ${fields.length} fields, expected ${FIELDS} (a label and ${size} pixel values).`);
    }
    const label = NUMBER.test(fields[0]) ? Number(fields[0]) : NaN;
    if (!(Number.isInteger(label) && label >= 0 && label <= 9)) {
      throw new Error(`${where}: label "${fields[0]}" is not a digit 0-9.`);
    }
    labels[i] = label;
    const base = i * frame + USPS_PAD * USPS_FRAME + USPS_PAD;
    for (let p = 0; p < size; p++) {
      const text = fields[p + 1];
      const v = NUMBER.test(text) ? Number(text) : NaN;
      if (!(v >= -1 && v <= 1)) {
        throw new Error(`${where}: pixel ${p + 1} ("${text}") is not a number in [-1, 1].`);
      }
      images[base + Math.floor(p / USPS_SIZE) * USPS_FRAME + (p % USPS_SIZE)] = uspsPixel(v);
    }
  }
  return validateImageSet({ name, count: n, height: USPS_FRAME, width: USPS_FRAME, channels: 1, images, labels });
}

/** Decompresses and parses an ESL zip file (see uspsFromText); a truncated or non-gzip file is one sentence. */
export function uspsFromGzip(bytes: Uint8Array, file: string, name: string, expectedCount?: number): ImageSet {
  let text: string;
  try {
    text = gunzipSync(bytes).toString('latin1');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'Z_BUF_ERROR') throw new Error(`${file}: the gzip stream is truncated (${e.message}).`);
    throw new Error(`${file}: is not a readable gzip file (${e.message}).`);
  }
  return uspsFromText(text, file, name, expectedCount);
}

export interface UspsLoadOptions {
  /** Digest the file must have; default the published one, null to skip the check (tests with small files). */
  readonly sha256?: string | null;
  /** Number of digits the file must hold; default the published count, null for any. */
  readonly count?: number | null;
}

/** USPS 16x16 digits from `dir` (where `tools:download-data -- usps` puts them), verified against the published SHA-256. */
export function loadUsps(split: Split, dir: string, options: UspsLoadOptions = {}): ImageSet {
  const name = `usps/${split}`;
  const file = join(dir, USPS_FILES[split]);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const problem = code === 'ENOENT' ? 'is missing' : `cannot be read (${code ?? (err as Error).message})`;
    throw new Error(`${name}: ${file} ${problem}; ${uspsHowToGet()}.`);
  }
  const expected = options.sha256 === undefined ? USPS_SHA256[split] : options.sha256;
  if (expected !== null) {
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== expected) {
      const size =
        options.sha256 === undefined ? ` (${bytes.length} bytes, the published file has ${USPS_BYTES[split]})` : '';
      throw new Error(
        `${name}: ${file} is corrupt or not the published file: its SHA-256 is ${actual}, expected ${expected}${size}; delete it and ${uspsHowToGet()}.`,
      );
    }
  }
  const count = options.count === undefined ? USPS_COUNTS[split] : (options.count ?? undefined);
  return uspsFromGzip(bytes, file, name, count);
}

/**
 * A grey set redrawn the way USPS digits were prepared: deslanted (a horizontal shear that makes the ink's
 * second moment upright), then scaled, keeping the aspect, until the ink's box (pixels over half intensity) is
 * USPS_SIZE pixels along its longer side, centred in a USPS_FRAME frame. MNIST digits are slanted as written and
 * sit by their centre of mass in a 20x20 box; this gives a source the target's geometry (domain knowledge of how
 * USPS was made, no target images or labels).
 */
export function uspsForm(set: ImageSet, name = set.name): ImageSet {
  if (set.channels !== 1) throw new Error(`${set.name}: uspsForm takes grey images, got ${set.channels} channels.`);
  const { height: h, width: w } = set;
  const frame = USPS_FRAME * USPS_FRAME;
  const images = new Uint8Array(set.count * frame);
  for (let i = 0; i < set.count; i++) {
    const src = set.images.subarray(i * h * w, (i + 1) * h * w);
    // Moments of the ink about its centre of mass (pixel centres at x + 0.5).
    let m = 0,
      mx = 0,
      my = 0;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const v = src[y * w + x];
        m += v;
        mx += v * (x + 0.5);
        my += v * (y + 0.5);
      }
    if (m === 0) continue; // a blank image stays blank
    const cx = mx / m,
      cy = my / m;
    let mu11 = 0,
      mu02 = 0;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const v = src[y * w + x];
        mu11 += v * (x + 0.5 - cx) * (y + 0.5 - cy);
        mu02 += v * (y + 0.5 - cy) ** 2;
      }
    const skew = mu02 > 0 ? mu11 / mu02 : 0;
    // The ink's box in deslanted coordinates (u = x - skew (y - cy), v = y).
    let u0 = Infinity,
      u1 = -Infinity,
      v0 = Infinity,
      v1 = -Infinity;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        if (src[y * w + x] < 128) continue;
        const u = x + 0.5 - skew * (y + 0.5 - cy);
        u0 = Math.min(u0, u - 0.5);
        u1 = Math.max(u1, u + 0.5);
        v0 = Math.min(v0, y);
        v1 = Math.max(v1, y + 1);
      }
    if (u0 > u1) continue; // no pixel over half intensity: nothing to box
    const scale = USPS_SIZE / Math.max(u1 - u0, v1 - v0);
    const uc = (u0 + u1) / 2,
      vc = (v0 + v1) / 2;
    const out = images.subarray(i * frame, (i + 1) * frame);
    const at = (x: number, y: number) => (x >= 0 && x < w && y >= 0 && y < h ? src[y * w + x] : 0);
    for (let Y = 0; Y < USPS_FRAME; Y++)
      for (let X = 0; X < USPS_FRAME; X++) {
        // Output pixel centre -> deslanted coordinates -> source coordinates, sampled bilinearly.
        const v = vc + (Y + 0.5 - USPS_FRAME / 2) / scale;
        const u = uc + (X + 0.5 - USPS_FRAME / 2) / scale;
        const sx = u + skew * (v - cy) - 0.5,
          sy = v - 0.5;
        const x0 = Math.floor(sx),
          y0 = Math.floor(sy);
        const fx = sx - x0,
          fy = sy - y0;
        const top = at(x0, y0) + (at(x0 + 1, y0) - at(x0, y0)) * fx;
        const bottom = at(x0, y0 + 1) + (at(x0 + 1, y0 + 1) - at(x0, y0 + 1)) * fx;
        out[Y * USPS_FRAME + X] = Math.round(top + (bottom - top) * fy);
      }
  }
  return { name, count: set.count, height: USPS_FRAME, width: USPS_FRAME, channels: 1, images, labels: set.labels };
}
