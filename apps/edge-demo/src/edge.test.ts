import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCanvas } from '@napi-rs/canvas';
import type { Browser, Page } from 'playwright-core';
import { loadMnist } from '@dann/data';
import { launchBrowser } from './browser.ts';
import { checkModelInfo } from '@dann/onnx';
import { rank } from './predict.ts';
import { edgeModel } from './testing/edge-model.ts';

/**
 * End to end on real processes and a real browser: trainer:train learns MNIST briefly, tools:evaluate and
 * tools:export-onnx export it (testing/edge-model.ts: once per test run, shared with classify.test.ts),
 * edge-demo:classify reads image files, and edge-demo:serve's page runs in
 * headless Chromium (browser.ts picks it: Debian's where installed, else the one in @sparticuz/chromium;
 * DANN_BROWSER=npm|system forces one), where the mouse draws digits and a file is dropped.
 */
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'edge-demo-'));
let runDir = '';
let model = '';
const mnist = loadMnist('test');

interface Proc {
  child: ChildProcess;
  output: string;
  exit: Promise<number | null>;
}
function run(script: string, args: string[]): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, script), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p: Proc = { child, output: '', exit: new Promise((resolve) => child.on('exit', resolve)) };
  child.stdout!.on('data', (d) => (p.output += d));
  child.stderr!.on('data', (d) => (p.output += d));
  return p;
}

/** MNIST test image k as a PNG (white on black, 28x28), or scaled up, inverted, on a coloured background as a JPEG. */
function digitFile(k: number, style: 'mnist' | 'photo'): string {
  const small = createCanvas(28, 28);
  const img = small.getContext('2d').createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const v = mnist.images[k * 784 + i];
    img.data.set([v, v, v, 255], i * 4);
  }
  small.getContext('2d').putImageData(img, 0, 0);
  const file = join(dir, `${style}-${k}.${style === 'mnist' ? 'png' : 'jpg'}`);
  if (style === 'mnist') {
    writeFileSync(file, small.toBuffer('image/png'));
  } else {
    const big = createCanvas(360, 270);
    const ctx = big.getContext('2d');
    ctx.fillStyle = '#e8dcc0';
    ctx.fillRect(0, 0, 360, 270);
    ctx.filter = 'invert(1) sepia(0.6)'; // dark brownish ink on a light background
    ctx.drawImage(small, 90, 20, 200, 230);
    writeFileSync(file, big.toBuffer('image/jpeg'));
  }
  return file;
}

let exportOutput = '';
before(async () => {
  ({ runDir, model, exportOutput } = await edgeModel());
});
after(async () => {
  // A page test that failed half-way leaves the browser and the server running.
  await browser?.close();
  if (server && server.child.exitCode === null) server.child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

test('tools:export-onnx writes a verified model.onnx with its model.json, and an int8 model a quarter the size', () => {
  assert.match(
    exportOutput,
    /model\.onnx: \d+ KiB, onnxruntime vs tfjs on 256 test images: max \|Δprob\| [0-9.e+-]+, top-1 differs on 0 \(allowed 0\.0001, none\): verified/,
  );
  assert.match(exportOutput, /\| model\.int8\.onnx \(int8\) \| \d+ KiB \| 0\.9\d+ \|/);
  const info = JSON.parse(readFileSync(join(runDir, 'model.json'), 'utf8'));
  assert.equal(checkModelInfo(info, 'model.json').training?.source, 'mnist');
  assert.equal(info.accuracy.testImages, 500);
  assert.ok(info.accuracy.source > 0.9, `source accuracy ${info.accuracy.source}`);
  assert.ok(existsSync(join(runDir, 'model.int8.onnx')) && existsSync(join(runDir, 'model.int8.json')));
});

test('edge-demo:classify: digits as files of any size and polarity; a bad file is one line and the rest are classified', async () => {
  const picks = Array.from({ length: 10 }, (_, k) => k);
  const files = [...picks.map((k) => digitFile(k, 'mnist')), ...picks.map((k) => digitFile(k, 'photo'))];
  const corrupt = join(dir, 'corrupt.png');
  writeFileSync(corrupt, Buffer.from('\x89PNG\r\n\x1a\n not really'));
  const p = run('apps/edge-demo/src/classify.ts', [
    '--model',
    model,
    '--json',
    files[0],
    corrupt,
    ...files.slice(1),
    join(dir, 'missing.jpg'),
  ]);
  assert.equal(await p.exit, 1, 'a bad file makes the exit code 1');
  const out = p.output
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line)) as (
    | { file: string; ok: true; digit: number; probability: number; top3: { digit: number }[]; latencyMs: number }
    | { file: string; ok: false; error: string }
  )[];
  assert.equal(out.length, 22);
  assert.deepEqual(
    out.filter((o) => !o.ok).map((o) => [o.file, !o.ok && o.error]),
    [
      [corrupt, 'not a readable PNG or JPEG image'],
      [join(dir, 'missing.jpg'), 'no such file'],
    ],
  );
  const byFile = new Map(out.flatMap((o) => (o.ok ? [[o.file, o] as const] : [])));
  const right = picks.filter((k) => byFile.get(files[k])!.digit === mnist.labels[k]).length;
  assert.ok(right >= 9, `${right} of 10 MNIST test digits right`);
  // The photo-like versions (bigger, inverted, tinted, JPEG) prepare to the same digit as the originals.
  const same = picks.filter((k) => byFile.get(files[k])!.digit === byFile.get(files[10 + k])!.digit).length;
  assert.ok(same >= 9, `${same} of 10 photo versions agree with the originals`);
  for (const o of byFile.values()) {
    assert.equal(o.top3[0].digit, o.digit);
    assert.ok(o.probability > 0 && o.probability <= 1 && o.latencyMs > 0);
  }
  const text = run('apps/edge-demo/src/classify.ts', ['--model', model, files[0]]);
  assert.equal(await text.exit, 0);
  assert.match(text.output, new RegExp(`mnist-0\\.png: ${mnist.labels[0]} \\(p [01]\\.\\d{3}\\)  top-3 .* ms`));
  const noModel = run('apps/edge-demo/src/classify.ts', ['--model', join(dir, 'nope.onnx'), files[0]]);
  assert.equal(await noModel.exit, 1);
  assert.match(noModel.output, /nope\.onnx does not exist; export a model with npx nx run tools:export-onnx/);
  const broken = join(dir, 'broken.onnx');
  writeFileSync(broken, readFileSync(model));
  writeFileSync(join(dir, 'broken.json'), '{"input": ');
  const badInfo = run('apps/edge-demo/src/classify.ts', ['--model', broken, files[0]]);
  assert.equal(await badInfo.exit, 1);
  assert.match(badInfo.output, /broken\.json is not valid JSON; export the model again with tools:export-onnx\./);
});

test('rank orders the probabilities; model.json that does not fit the demo is refused in one sentence', () => {
  const r = rank([0.01, 0.02, 0.5, 0.03, 0.04, 0.3, 0.02, 0.03, 0.03, 0.02]);
  assert.deepEqual([r.digit, r.top3.map((t) => t.digit)], [2, [2, 5, 4]]);
  assert.throws(() => rank([1]), /expected 10 class probabilities/);
  assert.throws(
    () => checkModelInfo({ input: { layout: 'NCHW', shape: ['batch', 3, 32, 32] } }, 'x.json'),
    /x\.json does not describe a 32x32x3 NHWC digit model/,
  );
});

/** The page in headless Chromium against a real edge-demo:serve, opened once for both page tests (each fails with the same sentence when it cannot be). */
let browser: Browser | undefined;
let page: Page;
let server: Proc | undefined;
let opened: Promise<void> | undefined;
const pageOpen = () => (opened ??= openPage());
async function openPage(): Promise<void> {
  const launched = await launchBrowser();
  browser = launched.browser;
  console.log(`# browser: ${launched.choice.describe}, Chromium ${browser.version()}`);
  const srv = (server = run('apps/edge-demo/src/serve.ts', ['--model', model, '--port', '0']));
  const deadline = Date.now() + 60_000;
  let url: string | undefined;
  while (!(url = /edge demo on (http:\S+)/.exec(srv.output)?.[1])) {
    if (Date.now() > deadline || srv.child.exitCode !== null)
      throw new Error(`edge-demo:serve did not start:\n${srv.output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  page = await browser.newPage();
  const failures: string[] = [];
  page.on('pageerror', (e) => failures.push(e.message));
  page.on('requestfailed', (r) => failures.push(`${r.url()} failed`));
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 }).catch(async () => {
    throw new Error(`the page did not get ready: ${await page.textContent('#status')} ${failures.join('; ')}`);
  });
  assert.deepEqual(failures, []);
}

/** Draws polylines (coordinates in 0..1 of the pad) with the mouse and waits for the page's answer. */
async function draw(strokes: [number, number][][]): Promise<{ digit: number; probabilities: number[] }> {
  await page.click('#clear');
  const before = Number(await page.getAttribute('#prediction', 'data-count'));
  const box = (await page.locator('#pad').boundingBox())!;
  for (const stroke of strokes) {
    await page.mouse.move(box.x + stroke[0][0] * box.width, box.y + stroke[0][1] * box.height);
    await page.mouse.down();
    for (const [x, y] of stroke.slice(1))
      await page.mouse.move(box.x + x * box.width, box.y + y * box.height, { steps: 8 });
    await page.mouse.up();
  }
  return answerAfter(before);
}

async function answerAfter(count: number) {
  await page.waitForFunction(
    (n) =>
      Number(document.getElementById('prediction')!.dataset.count) > n &&
      document.getElementById('bars')!.dataset.probabilities,
    count,
  );
  // Let the classification of the final stroke (queued behind earlier ones) land.
  await page.waitForTimeout(300);
  const digit = Number(await page.getAttribute('#prediction', 'data-digit'));
  const probabilities = JSON.parse((await page.getAttribute('#bars', 'data-probabilities'))!) as number[];
  return { digit, probabilities };
}

const ellipse = (cx: number, cy: number, rx: number, ry: number): [number, number][] =>
  Array.from({ length: 33 }, (_, i) => [
    cx + rx * Math.sin((i / 32) * 2 * Math.PI),
    cy - ry * Math.cos((i / 32) * 2 * Math.PI),
  ]);

test('the page in headless Chromium: digits drawn with the mouse are classified, probabilities sum to 1', {
  timeout: 120_000,
}, async () => {
  await pageOpen();
  const drawn: [number, [number, number][][]][] = [
    [
      1,
      [
        [
          [0.5, 0.15],
          [0.5, 0.85],
        ],
      ],
    ],
    [0, [ellipse(0.5, 0.5, 0.22, 0.33)]],
    [
      7,
      [
        [
          [0.28, 0.2],
          [0.72, 0.2],
          [0.42, 0.85],
        ],
      ],
    ],
  ];
  for (const [want, strokes] of drawn) {
    const { digit, probabilities } = await draw(strokes);
    assert.equal(
      digit,
      want,
      `drew a ${want}, the page said ${digit} (${probabilities.map((p) => p.toFixed(2)).join(' ')})`,
    );
    assert.equal(probabilities.length, 10);
    assert.ok(Math.abs(probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-4);
  }
  assert.match(
    (await page.textContent('#latency'))!,
    /inference [\d.]+ ms \(median [\d.]+ ms over \d+, after warm-up\)/,
  );
});

test('the page: a dropped MNIST test image is classified; a dropped non-image is one clear line', {
  timeout: 60_000,
}, async () => {
  await pageOpen();
  const drop = async (name: string, type: string, bytes: Buffer) => {
    const count = Number(await page.getAttribute('#prediction', 'data-count'));
    const transfer = await page.evaluateHandle(
      ({ name, type, b64 }) => {
        const dt = new DataTransfer();
        dt.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], name, { type }));
        return dt;
      },
      { name, type, b64: bytes.toString('base64') },
    );
    await page.dispatchEvent('#pad', 'drop', { dataTransfer: transfer });
    return count;
  };
  const k = 3; // a test image the model gets right (checked through the CLI above as well)
  const count = await drop('digit.png', 'image/png', readFileSync(digitFile(k, 'mnist')));
  const { digit, probabilities } = await answerAfter(count);
  assert.equal(digit, mnist.labels[k]);
  assert.ok(Math.abs(probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-4);
  await drop('notes.txt', 'text/plain', Buffer.from('not an image'));
  await page.waitForFunction(() => document.getElementById('status')!.classList.contains('error'));
  assert.equal(await page.textContent('#status'), 'notes.txt is not an image this browser can read.');
  await browser!.close();
  browser = undefined;
  server!.child.kill('SIGTERM');
  assert.equal(await server!.exit, 0);
});
