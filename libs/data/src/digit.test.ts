import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backgroundFlatness, CLEAN_BACKGROUND, prepareDigit, type RgbaImage } from './digit.ts';
import { takeFirst } from './imageset.ts';
import { loadMnist } from './mnist.ts';
import { generateMnistM, proceduralTexture } from './mnistm.ts';
import { INPUT_SIZE, preprocessImage } from './preprocess.ts';
import { createRng } from './rng.ts';

/** A w x h RGBA picture: background colour, and ink where `inked(x, y)` (coordinates in 0..1). */
function picture(
  w: number,
  h: number,
  bg: number[],
  ink: number[],
  inked: (x: number, y: number) => boolean,
): RgbaImage {
  const data = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const c = inked(x / w, y / h) ? ink : bg;
      data.set([c[0], c[1], c[2], 255], (y * w + x) * 4);
    }
  return { width: w, height: h, data };
}

/** A "7": a bar along the top and a diagonal down to the left, off-centre in the frame. */
const seven = (x: number, y: number) =>
  (y > 0.2 && y < 0.28 && x > 0.3 && x < 0.7) ||
  (y >= 0.28 && y < 0.8 && Math.abs(x - (0.7 - (y - 0.28) * 0.5)) < 0.04);

function stats(m: Uint8Array) {
  let mass = 0,
    mx = 0,
    my = 0,
    left = 28,
    right = -1,
    top = 28,
    bottom = -1;
  for (let y = 0; y < 28; y++)
    for (let x = 0; x < 28; x++) {
      const v = m[y * 28 + x];
      mass += v;
      mx += v * x;
      my += v * y;
      if (v > 50) {
        left = Math.min(left, x);
        right = Math.max(right, x);
        top = Math.min(top, y);
        bottom = Math.max(bottom, y);
      }
    }
  return { cx: mx / mass, cy: my / mass, width: right - left + 1, height: bottom - top + 1 };
}

const correlation = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  const n = a.length,
    ma = Array.from(a).reduce((s, v) => s + v, 0) / n,
    mb = Array.from(b).reduce((s, v) => s + v, 0) / n;
  let ab = 0,
    aa = 0,
    bb = 0;
  for (let i = 0; i < n; i++) {
    ab += (a[i] - ma) * (b[i] - mb);
    aa += (a[i] - ma) ** 2;
    bb += (b[i] - mb) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
};

test('a dark digit on a large light picture becomes a bright 28x28 MNIST digit: fitted in 20 px, centred by mass', () => {
  const d = prepareDigit(picture(400, 300, [250, 248, 240], [20, 20, 30], seven));
  assert.equal(d.inverted, true);
  assert.equal(d.empty, false);
  const s = stats(d.mnist);
  assert.ok(Math.max(s.width, s.height) <= 20 && Math.max(s.width, s.height) >= 18, JSON.stringify(s));
  assert.ok(Math.abs(s.cx - 14) <= 0.75 && Math.abs(s.cy - 14) <= 0.75, JSON.stringify(s));
  assert.equal(d.input.length, INPUT_SIZE);
});

test('light-on-dark, dark-on-light and coloured versions of the same digit prepare alike', () => {
  const a = prepareDigit(picture(120, 160, [0, 0, 0], [255, 255, 255], seven));
  const b = prepareDigit(picture(120, 160, [255, 255, 255], [0, 0, 0], seven));
  const c = prepareDigit(picture(120, 160, [30, 60, 200], [240, 220, 40], seven));
  assert.equal(a.inverted, false);
  assert.equal(b.inverted, true);
  assert.ok(correlation(a.mnist, b.mnist) > 0.99);
  assert.ok(correlation(a.mnist, c.mnist) > 0.95, String(correlation(a.mnist, c.mnist)));
});

test('a tiny picture is enlarged to the 20 px box; a transparent canvas counts as white', () => {
  const small = picture(10, 12, [255, 255, 255], [0, 0, 0], seven);
  for (let i = 0; i < small.data.length; i += 4) if (small.data[i] === 255) small.data[i + 3] = 0; // transparent background
  const s = stats(prepareDigit(small).mnist);
  assert.ok(Math.max(s.width, s.height) >= 17, JSON.stringify(s));
});

test('MNIST digits, already fitted and centred, come back nearly unchanged', () => {
  const mnist = loadMnist('test');
  for (let k = 0; k < 20; k++) {
    const src = mnist.images.subarray(k * 784, (k + 1) * 784);
    const data = new Uint8ClampedArray(784 * 4);
    src.forEach((v, i) => data.set([v, v, v, 255], i * 4));
    const d = prepareDigit({ width: 28, height: 28, data });
    assert.ok(correlation(src, d.mnist) > 0.9, `test image ${k}: ${correlation(src, d.mnist)}`);
  }
});

test('a blank or uniform picture has no digit; a wrong buffer size is one clear error', () => {
  const blank = prepareDigit(picture(50, 50, [200, 10, 10], [0, 0, 0], () => false));
  assert.equal(blank.empty, true);
  assert.ok(blank.mnist.every((v) => v === 0));
  assert.ok(blank.input.every(Number.isFinite));
  assert.throws(
    () => prepareDigit({ width: 4, height: 4, data: new Uint8Array(10) }),
    /RGBA image of 4x4 needs 64 bytes, got 10/,
  );
});

/** The seven on a light sheet (a lighter rectangle) on a desk, with uniform noise of standard deviation `noise` and a left-to-right shading of `shade` levels. */
function photo(noise: number, shade: number, seed: number): RgbaImage {
  const w = 360,
    h = 270,
    rng = createRng(seed);
  const img = picture(w, h, [0, 0, 0], [0, 0, 0], () => false);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const u = x / w,
        v = y / h;
      const sheet = u > 0.2 && u < 0.8 && v > 0.05 && v < 0.95;
      const c =
        seven((u - 0.2) / 0.6, (v - 0.05) / 0.9) && sheet ? [60, 40, 30] : sheet ? [250, 245, 235] : [225, 215, 190];
      for (let ch = 0; ch < 3; ch++)
        img.data[(y * w + x) * 4 + ch] = c[ch] - shade * u + noise * Math.sqrt(3) * rng.uniform(-1, 1);
    }
  return img;
}

const asRgba = (pixels: ArrayLike<number>, w: number, h: number, channels: number): RgbaImage => {
  const data = new Uint8ClampedArray(w * h * 4);
  for (let p = 0; p < w * h; p++)
    for (let c = 0; c < 4; c++) data[p * 4 + c] = c === 3 ? 255 : pixels[p * channels + (channels === 1 ? 0 : c)];
  return { width: w, height: h, data };
};

test('clean backgrounds are cropped to the ink: flat colours, a sheet on a desk, camera-like noise and mild shading', () => {
  for (const img of [
    picture(120, 160, [30, 60, 200], [240, 220, 40], seven),
    photo(0, 0, 1),
    photo(10, 0, 2),
    photo(0, 15, 3),
    photo(6, 10, 4),
  ]) {
    const flatness = backgroundFlatness(img);
    assert.ok(flatness >= CLEAN_BACKGROUND.fraction, `flatness ${flatness}`);
    const d = prepareDigit(img);
    assert.equal(d.mode, 'ink');
    const s = stats(d.mnist);
    assert.ok(
      Math.max(s.width, s.height) >= 18 &&
        Math.max(s.width, s.height) <= 20 &&
        Math.abs(s.cx - 14) <= 1 &&
        Math.abs(s.cy - 14) <= 1,
      JSON.stringify(s),
    );
  }
  // Shading of 40 levels across the picture is more than a background may vary and still count as flat.
  assert.equal(prepareDigit(photo(0, 40, 5)).mode, 'frame');
});

test("textured backgrounds (MNIST-M style) are taken whole, exactly as the model's preprocessing takes the picture", () => {
  const mnist = takeFirst(loadMnist('test'), 200);
  const textured = generateMnistM(mnist, { seed: 7 });
  let whole = 0;
  for (let k = 0; k < textured.count; k++) {
    const pixels = textured.images.subarray(k * 28 * 28 * 3, (k + 1) * 28 * 28 * 3);
    const d = prepareDigit(asRgba(pixels, 28, 28, 3));
    if (d.mode !== 'frame') continue;
    whole++;
    const asIs = new Float32Array(INPUT_SIZE);
    preprocessImage(pixels, 28, 28, 3, asIs);
    assert.deepEqual(d.input, asIs);
    assert.equal(d.empty, false);
  }
  assert.ok(whole >= 0.9 * textured.count, `${whole} of ${textured.count} taken whole`);
  // Every clean MNIST digit is still cropped.
  for (let k = 0; k < mnist.count; k++)
    assert.equal(prepareDigit(asRgba(mnist.images.subarray(k * 784, (k + 1) * 784), 28, 28, 1)).mode, 'ink');
});

test('a big photo on a textured background is taken whole; a digit that differs only in colour is not blank', () => {
  // The seven as |texture - ink| (the MNIST-M rule) on 400x300, over textures of 40x30 cells scaled up.
  for (let seed = 0; seed < 10; seed++) {
    const tex = proceduralTexture(createRng(seed), 30, 40, 0.6, 0.75);
    const img = picture(400, 300, [0, 0, 0], [0, 0, 0], () => false);
    for (let y = 0; y < 300; y++)
      for (let x = 0; x < 400; x++) {
        const t = (Math.floor(y / 10) * 40 + Math.floor(x / 10)) * 3,
          ink = seven(x / 400, y / 300) ? 255 : 0;
        for (let c = 0; c < 3; c++) img.data[(y * 400 + x) * 4 + c] = Math.abs(tex[t + c] - ink);
      }
    const d = prepareDigit(img);
    assert.deepEqual([d.mode, d.empty, d.inverted], ['frame', false, false]);
    assert.equal(d.mnist.length, 28 * 28);
    assert.ok(d.input.every(Number.isFinite), 'finite input');
  }
  // Red on green of about the same luminance: no grey ink to crop to, so the picture goes whole, not as blank.
  const isoluminant = prepareDigit(picture(100, 100, [0, 130, 0], [255, 0, 0], seven));
  assert.deepEqual([isoluminant.mode, isoluminant.empty], ['frame', false]);
  // A uniform picture has no digit whichever way it is looked at.
  const blank = prepareDigit(picture(50, 50, [200, 10, 10], [0, 0, 0], () => false));
  assert.deepEqual([blank.mode, blank.empty], ['ink', true]);
});
