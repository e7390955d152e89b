import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCanvas } from '@napi-rs/canvas';
import { generateSynthDigits } from './synth.ts';
import { loadSynthFonts } from './fonts.ts';
import { createHash } from 'node:crypto';

const sha = (b: Uint8Array | Uint8ClampedArray) => createHash('sha256').update(b).digest('hex');

test('same seed gives byte-identical images; another seed differs', () => {
  const a = generateSynthDigits({ count: 40, seed: 7 });
  const b = generateSynthDigits({ count: 40, seed: 7 });
  const c = generateSynthDigits({ count: 40, seed: 8 });
  assert.equal(sha(a.images), sha(b.images));
  assert.deepEqual(a.labels, b.labels);
  assert.notEqual(sha(a.images), sha(c.images));
});

test('image i depends only on (seed, i): a shorter set is a prefix of a longer one', () => {
  const short = generateSynthDigits({ count: 5, seed: 3 });
  const long = generateSynthDigits({ count: 12, seed: 3 });
  assert.deepEqual(short.images, long.images.subarray(0, short.images.length));
  assert.deepEqual(short.labels, long.labels.subarray(0, 5));
});

test('has the 32x32x3 shape, all ten classes and varied pixels', () => {
  const set = generateSynthDigits({ count: 300, seed: 11 });
  assert.equal(set.images.length, 300 * 32 * 32 * 3);
  assert.equal(new Set(set.labels).size, 10);
  // Every image has real content (not a flat colour).
  for (let i = 0; i < set.count; i++) {
    const px = set.images.subarray(i * 3072, (i + 1) * 3072);
    let min = 255,
      max = 0;
    for (const v of px) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    assert.ok(max - min > 20, `image ${i} is nearly flat (${min}..${max})`);
  }
});

test('loads at least 8 printed and 8 more handwriting font families, each rendering a digit its own way', () => {
  const printed = new Set(loadSynthFonts().map((f) => f.family));
  const families = [...new Set(loadSynthFonts('printed+handwriting').map((f) => f.family))];
  assert.ok(printed.size >= 8, `only ${printed.size} printed families`);
  assert.ok(families.length >= printed.size + 8, `only ${families.length - printed.size} handwriting families`);
  assert.ok(
    [...printed].every((f) => families.includes(f)),
    'the handwriting set keeps the printed fonts',
  );
  const canvas = createCanvas(48, 48);
  const ctx = canvas.getContext('2d');
  const renders = new Set<string>();
  for (const family of families) {
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, 48, 48);
    ctx.fillStyle = '#000';
    ctx.font = `400 36px ${family}`;
    ctx.fillText('4', 8, 40);
    renders.add(sha(ctx.getImageData(0, 0, 48, 48).data));
  }
  assert.equal(renders.size, families.length, 'some families render identically: a font failed to load and fell back');
});

test('handwriting fonts change the glyphs, not the draws: same labels, other images', () => {
  const printed = generateSynthDigits({ count: 50, seed: 5 });
  const hand = generateSynthDigits({ count: 50, seed: 5, fonts: 'printed+handwriting' });
  assert.deepEqual(hand.labels, printed.labels);
  assert.notEqual(sha(hand.images), sha(printed.images));
});
