import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadDataset, workspaceRoot } from './datasets.ts';
import type { ImageSet } from './imageset.ts';
import {
  loadUsps,
  USPS_COUNTS,
  USPS_FILES,
  USPS_FRAME,
  USPS_PAD,
  USPS_SIZE,
  uspsForm,
  uspsFromGzip,
  uspsFromText,
  uspsPixel,
} from './usps.ts';

/** One ESL line: label then 256 values, formatted like the training file ("6.0000 -1.0000 ..."). */
function line(label: number | string, values: ArrayLike<number>, fmt = (v: number) => v.toFixed(4)): string {
  return `${typeof label === 'number' ? label.toFixed(4) : label} ${Array.from(values, fmt).join(' ')} `;
}

/** Digit i: a deterministic pattern in [-1, 1] with both ends present. */
function values(i: number): number[] {
  return Array.from({ length: 256 }, (_, p) =>
    p === 0 ? -1 : p === 255 ? 1 : (((p * 37 + i * 11) % 201) - 100) / 100,
  );
}

function withDir(fn: (dir: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'dann-usps-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a good file round-trips: labels, 16x16 grey in a 22x22 frame, -1 -> 0 (background) and 1 -> 255 (ink)', () => {
  const labels = [6, 5, 4, 7, 3, 0, 9, 1, 2, 8];
  const text = labels.map((l, i) => line(l, values(i))).join('\n') + '\n';
  const set = uspsFromGzip(gzipSync(text), 'f.gz', 'usps/x', labels.length);
  assert.equal(set.name, 'usps/x');
  assert.deepEqual([set.count, set.height, set.width, set.channels], [10, 22, 22, 1]);
  assert.deepEqual([...set.labels], labels);
  for (let i = 0; i < labels.length; i++) {
    const image = set.images.subarray(i * 484, (i + 1) * 484);
    const inner = Array.from({ length: 256 }, (_, p) => image[(3 + Math.floor(p / 16)) * 22 + 3 + (p % 16)]);
    assert.deepEqual(
      inner,
      values(i).map((v) => Math.round((v + 1) * 127.5)),
    );
    // The 3-pixel border is background.
    assert.equal(
      image.reduce((a, v) => a + v, 0),
      inner.reduce((a, v) => a + v, 0),
    );
  }
  assert.equal(set.images[3 * 22 + 3], 0);
  assert.equal(set.images[18 * 22 + 18], 255);
  assert.deepEqual([uspsPixel(-1), uspsPixel(0), uspsPixel(1)], [0, 128, 255]);
});

test("reads the test file's number style (integer labels, short values) and tolerates CRLF and no final newline", () => {
  const text = [line('9', values(1), String), line('0', values(2), (v) => v.toPrecision(3))].join('\r\n');
  const set = uspsFromText(text, 'f', 'usps/t', 2);
  assert.deepEqual([...set.labels], [9, 0]);
  assert.equal(set.images[484 + 3 * 22 + 3], 0); // digit 2's first value, -1
});

test('each kind of corruption is one sentence naming the file and line, never a partial set', () => {
  const good = [line(1, values(0)), line(2, values(1)), line(3, values(2))];
  const bad = (i: number, l: string) => good.map((g, k) => (k === i ? l : g)).join('\n') + '\n';
  const short = values(0).slice(0, 255);
  assert.throws(
    () => uspsFromText(bad(1, line(2, short)), 'zip.x.gz', 'u'),
    /^Error: zip\.x\.gz line 2: 256 fields, expected 257 \(a label and 256 pixel values\)\.$/,
  );
  assert.throws(
    () => uspsFromText(bad(2, line(3, [...values(0), 0])), 'zip.x.gz', 'u'),
    /zip\.x\.gz line 3: 258 fields, expected 257/,
  );
  assert.throws(
    () => uspsFromText(bad(0, line(10, values(0))), 'zip.x.gz', 'u'),
    /zip\.x\.gz line 1: label "10\.0000" is not a digit 0-9\./,
  );
  assert.throws(
    () => uspsFromText(bad(0, line(-1, values(0))), 'zip.x.gz', 'u'),
    /line 1: label "-1\.0000" is not a digit 0-9/,
  );
  assert.throws(
    () => uspsFromText(bad(0, line('2.5', values(0))), 'zip.x.gz', 'u'),
    /line 1: label "2\.5" is not a digit 0-9/,
  );
  assert.throws(() => uspsFromText(bad(0, line('x', values(0))), 'zip.x.gz', 'u'), /line 1: label "x" is not a digit/);
  const high = values(0);
  high[17] = 1.5;
  assert.throws(
    () => uspsFromText(bad(1, line(2, high)), 'zip.x.gz', 'u'),
    /zip\.x\.gz line 2: pixel 18 \("1\.5000"\) is not a number in \[-1, 1\]\./,
  );
  const low = values(0);
  low[3] = -1.001;
  assert.throws(
    () => uspsFromText(bad(1, line(2, low)), 'zip.x.gz', 'u'),
    /line 2: pixel 4 \("-1\.0010"\) is not a number in \[-1, 1\]/,
  );
  assert.throws(
    () => uspsFromText(bad(1, line(2, values(0)).replace(' -1.0000', ' NaN')), 'f', 'u'),
    /line 2: pixel 1 \("NaN"\) is not a number/,
  );
  assert.throws(
    () => uspsFromText(bad(1, line(2, values(0)).replace(' -1.0000', ' 0x1')), 'f', 'u'),
    /line 2: pixel 1 \("0x1"\)/,
  );
  assert.throws(() => uspsFromText(bad(1, ''), 'f', 'u'), /f line 2: 0 fields, expected 257/);
  // A line count other than the published one (a truncated or padded file that still parses).
  assert.throws(
    () => uspsFromText(good.join('\n'), 'zip.x.gz', 'u', 4),
    /^Error: zip\.x\.gz: holds 3 lines, expected 4 digits; the file is incomplete or not the published one\.$/,
  );
  assert.throws(() => uspsFromText('', 'f', 'u'), /f: holds no digits\./);
  // Truncated and non-gzip bytes.
  const gz = gzipSync(good.join('\n'));
  assert.throws(
    () => uspsFromGzip(gz.subarray(0, gz.length - 10), 'zip.x.gz', 'u'),
    /^Error: zip\.x\.gz: the gzip stream is truncated \(unexpected end of file\)\.$/,
  );
  assert.throws(
    () => uspsFromGzip(Buffer.from(good.join('\n')), 'zip.x.gz', 'u'),
    /zip\.x\.gz: is not a readable gzip file \(incorrect header check\)\./,
  );
});

test('loadUsps verifies the SHA-256 and the digit count, and a missing file names both ways to get it', () => {
  withDir((dir) => {
    const gz = gzipSync([line(1, values(0)), line(2, values(1))].join('\n') + '\n');
    const file = join(dir, USPS_FILES.train);
    writeFileSync(file, gz);
    const sha = createHash('sha256').update(gz).digest('hex');
    assert.deepEqual([...loadUsps('train', dir, { sha256: sha, count: 2 }).labels], [1, 2]);
    assert.throws(
      () => loadUsps('train', dir),
      new RegExp(
        `^Error: usps/train: ${file.replace(/[.\\/]/g, '\\$&')} is corrupt or not the published file: its SHA-256 is ${sha}, expected 66ebf231[0-9a-f]+ \\(${gz.length} bytes, the published file has 1829071\\); delete it and run \`npx nx run tools:download-data -- usps\``,
      ),
    );
    assert.throws(() => loadUsps('train', dir, { sha256: sha }), /holds 2 lines, expected 7291 digits/);
    assert.throws(
      () => loadUsps('train', dir, { sha256: 'ab'.repeat(32), count: 2 }),
      /SHA-256 is [0-9a-f]{64}, expected (ab){32}; delete it/,
    );
    assert.throws(
      () => loadUsps('test', dir),
      /^Error: usps\/test: .*zip\.test\.gz is missing; run `npx nx run tools:download-data -- usps` on a machine with internet access, or `npx nx run tools:download-data -- usps --from DIR` with a folder holding zip\.train\.gz and zip\.test\.gz \(or set DANN_DATA_DIR to a folder whose usps\/ holds them\)\.$/,
    );
    mkdirSync(join(dir, 'data'));
    assert.throws(
      () => loadDataset('usps', 'test', { dataDir: join(dir, 'data'), limit: 5 }),
      /usps\/test: .*data\/usps\/zip\.test\.gz is missing; run `npx nx run tools:download-data -- usps`/,
    );
  });
});

/** Where the real files may be: $DANN_DATA_DIR/usps, <workspace>/data/usps, then the shared copy beside the checkout. */
function realUspsDataDir(): string | undefined {
  const candidates = [
    process.env.DANN_DATA_DIR,
    join(workspaceRoot(), 'data'),
    resolve(workspaceRoot(), '..', 'shared', 'data'),
  ];
  return candidates.find(
    (d) =>
      d !== undefined && existsSync(join(d, 'usps', USPS_FILES.train)) && existsSync(join(d, 'usps', USPS_FILES.test)),
  );
}

const realDir = realUspsDataDir();
test('the real ESL files: 7,291 / 2,007 digits, the published label histograms, pixels 0..255 with a dark background', {
  timeout: 60_000,
  skip: realDir
    ? false
    : 'skipped: the real USPS files (zip.train.gz, zip.test.gz) are not in $DANN_DATA_DIR/usps, data/usps or ../shared/data/usps; run `npx nx run tools:download-data -- usps` to test them',
}, () => {
  const histograms = {
    train: [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644],
    test: [359, 264, 198, 166, 200, 160, 170, 147, 166, 177],
  };
  for (const split of ['train', 'test'] as const) {
    const set = loadDataset('usps', split, { dataDir: realDir });
    assert.equal(set.count, USPS_COUNTS[split]);
    assert.deepEqual([set.height, set.width, set.channels], [22, 22, 1]);
    const hist = new Array<number>(10).fill(0);
    for (const l of set.labels) hist[l]++;
    assert.deepEqual(hist, histograms[split]);
    assert.equal(
      hist.reduce((a, b) => a + b, 0),
      USPS_COUNTS[split],
    );
    let min = 255,
      max = 0,
      dark = 0;
    for (const v of set.images) {
      if (v < min) min = v;
      if (v > max) max = v;
      if (v < 32) dark++;
    }
    assert.deepEqual([min, max], [0, 255]);
    // Like MNIST: mostly background (dark), the strokes light.
    assert.ok(
      dark / set.images.length > 0.5,
      `${split}: only ${((dark / set.images.length) * 100).toFixed(0)}% dark pixels`,
    );
    // The digit's own corner pixels (inside the padding) are background in nearly every digit.
    let cornerDark = 0;
    for (let i = 0; i < set.count; i++) if (set.images[i * 484 + 3 * 22 + 3] < 32) cornerDark++;
    assert.ok(cornerDark / set.count > 0.95);
    assert.equal(loadDataset('usps', split, { dataDir: realDir, limit: 100 }).count, 100);
  }
});

test('uspsForm: a slanted bar comes out upright, 16 pixels long along its longer side, centred in the 22x22 frame', () => {
  // A bar 3 pixels wide and 14 tall leaning right by half a pixel a row ("/"), off-centre in a 28x28 frame.
  const images = new Uint8Array(28 * 28);
  for (let y = 6; y < 20; y++) {
    const x0 = Math.round(8 + (20 - y) * 0.5);
    for (let x = x0; x < x0 + 3; x++) images[y * 28 + x] = 255;
  }
  const blank = new Uint8Array(28 * 28);
  const set: ImageSet = {
    name: 'bars',
    count: 2,
    height: 28,
    width: 28,
    channels: 1,
    images: Uint8Array.from([...images, ...blank]),
    labels: Uint8Array.from([1, 7]),
  };
  const formed = uspsForm(set, 'formed');
  assert.deepEqual([formed.name, formed.count, formed.height, formed.width], ['formed', 2, USPS_FRAME, USPS_FRAME]);
  assert.deepEqual(formed.labels, set.labels);
  const at = (x: number, y: number) => formed.images[y * USPS_FRAME + x];
  const ink = (y: number) => [...Array(USPS_FRAME).keys()].filter((x) => at(x, y) >= 128);
  const rows = [...Array(USPS_FRAME).keys()].filter((y) => ink(y).length > 0);
  assert.deepEqual([rows[0], rows[rows.length - 1]], [USPS_PAD, USPS_PAD + USPS_SIZE - 1], 'spans rows 3..18');
  // Upright: every row's ink has the same centre, the frame's centre, within a pixel.
  for (const y of rows.slice(1, -1)) {
    const xs = ink(y);
    const centre = (xs[0] + xs[xs.length - 1] + 1) / 2;
    assert.ok(Math.abs(centre - USPS_FRAME / 2) <= 1, `row ${y}: ink ${xs} is not centred`);
  }
  assert.ok(
    formed.images.subarray(USPS_FRAME * USPS_FRAME).every((v) => v === 0),
    'a blank image stays blank',
  );
  assert.throws(() => uspsForm({ ...set, channels: 3, images: new Uint8Array(2 * 28 * 28 * 3) }), /grey images/);
  // The dataset: MNIST's digits and labels in USPS's frame.
  const asUsps = loadDataset('mnist-as-usps', 'test', { limit: 5 });
  assert.deepEqual([asUsps.name, asUsps.height, asUsps.width], ['mnist-as-usps/test', USPS_FRAME, USPS_FRAME]);
  assert.deepEqual(asUsps.labels, loadDataset('mnist', 'test', { limit: 5 }).labels);
});
