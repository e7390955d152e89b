import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  copyFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCanvas } from '@napi-rs/canvas';
import { loadDataset, loadMnist, takeFirst, writeSetPngs } from '@dann/data';
import { edgeModel, ROOT, runScript, type EdgeModel } from './testing/edge-model.ts';

/**
 * edge-demo:classify on folders of files, against the small MNIST model the edge tests share
 * (testing/edge-model.ts): thousands of files in one call, and its accuracy on whole test sets written as PNGs
 * against tools:evaluate's on the same model.
 */
const dir = mkdtempSync(join(tmpdir(), 'edge-classify-'));
let fixture: EdgeModel;
before(async () => {
  fixture = await edgeModel();
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Result {
  file: string;
  ok: boolean;
  digit?: number;
  preparation?: 'ink' | 'frame';
  error?: string;
}
interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: string[];
  stderr: string;
  firstLineMs: number;
  totalMs: number;
  peaks: { lines: number; hwmKiB: number }[];
}

/** Runs the CLI; collects its stdout lines as they come and samples its peak RSS (VmHWM) with the count of lines out so far. */
function classify(args: string[]): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'apps/edge-demo/src/classify.ts'), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run: Run = { code: null, signal: null, lines: [], stderr: '', firstLineMs: NaN, totalMs: NaN, peaks: [] };
  const t0 = Date.now();
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop()!;
    if (run.lines.length === 0 && parts.length > 0) run.firstLineMs = Date.now() - t0;
    run.lines.push(...parts);
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (run.stderr += d));
  const sample = () => {
    try {
      const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (hwm) run.peaks.push({ lines: run.lines.length, hwmKiB: Number(hwm[1]) });
    } catch {
      // exited (or no /proc): the samples so far stand
    }
  };
  const timer = setInterval(sample, 50);
  return new Promise((resolve) =>
    child.on('close', (code, signal) => {
      clearInterval(timer);
      Object.assign(run, { code, signal, totalMs: Date.now() - t0 });
      if (partial) run.lines.push(partial);
      resolve(run);
    }),
  );
}

const labelOf = (file: string) => Number(/-(\d)\.png$/.exec(file)![1]);

/** The CLI's --json run over `files`: every line parses, one per file, in the order given. */
function parseResults(run: Run, files: string[]): Result[] {
  assert.equal(run.signal, null, `the CLI died of ${run.signal}: ${run.stderr}`);
  const results = run.lines.filter((l) => l.trim()).map((l) => JSON.parse(l) as Result);
  assert.equal(results.length, files.length, run.stderr);
  results.forEach((r, i) => assert.equal(r.file, files[i]));
  return results;
}

const accuracy = (results: Result[]) =>
  results.filter((r) => r.ok && r.digit === labelOf(r.file)).length / results.length;

test('results come in the order given across batches, a bad file in its place; text mode ends with a summary', {
  timeout: 60_000,
}, async () => {
  const mnist = loadMnist('test');
  const sub = join(dir, 'few');
  mkdirSync(sub);
  const files = writeSetPngs(takeFirst(mnist, 7), sub, 'mnist');
  const bad = join(sub, 'bad-0.png');
  writeFileSync(bad, 'not a picture');
  const order = [...files.slice(0, 4), bad, ...files.slice(4)];
  const json = await classify(['--model', fixture.model, '--json', '--batch', '3', ...order]);
  assert.equal(json.code, 1, 'a bad file makes the exit code 1');
  const results = parseResults(json, order);
  assert.deepEqual(
    results.map((r) => r.ok),
    [true, true, true, true, false, true, true, true],
  );
  assert.equal(results[4].error, 'not a readable PNG or JPEG image');
  const text = await classify(['--model', fixture.model, '--batch', '3', ...order]);
  assert.equal(text.code, 1);
  assert.equal(text.lines.filter((l) => / \(p [01]\.\d{3}\) {2}top-3 /.test(l)).length, 7);
  assert.match(text.lines.at(-2)!, /^8 files: 7 classified, 1 skipped; [\d.]+ s \([\d.]+ ms per file\)$/);
  // Their names end in their labels: the classified ones are scored, the bad file is not counted.
  assert.match(
    text.lines.at(-1)!,
    /^accuracy against the digit their names end in \(NAME-<digit>\.png\): [\d.]+ \(\d of 7\)$/,
  );
  const usage = await classify(['--model', fixture.model, '--batch', '0', files[0]]);
  assert.equal(usage.code, 1);
  assert.match(usage.stderr, /--batch must be a positive integer, got "0"/);
});

test('5,000 files in one call: all classified, streamed as JSON lines while it runs, in bounded memory', {
  timeout: 240_000,
}, async () => {
  // 100 MNIST test digits as 200x150 "photos" (dark ink on tinted paper), each copied 50 times: 5,000 files whose
  // 250 KB of paths are far past the ~28 KB command line that made onnxruntime's telemetry crash the CLI (exit 139).
  const mnist = loadMnist('test');
  const sub = join(dir, 'many');
  mkdirSync(sub);
  const small = createCanvas(28, 28);
  const photo = createCanvas(200, 150);
  const ctx = photo.getContext('2d');
  const files: string[] = [];
  for (let k = 0; k < 5000; k++) {
    const d = k % 100,
      file = join(sub, `picture-${String(k).padStart(5, '0')}-of-the-mnist-test-set-${mnist.labels[d]}.png`);
    if (k < 100) {
      const img = small.getContext('2d').createImageData(28, 28);
      for (let i = 0; i < 784; i++)
        img.data.set(
          [255 - mnist.images[d * 784 + i], 255 - mnist.images[d * 784 + i], 255 - mnist.images[d * 784 + i], 255],
          i * 4,
        );
      small.getContext('2d').putImageData(img, 0, 0);
      ctx.fillStyle = `hsl(${(k * 37) % 360} 35% 85%)`;
      ctx.fillRect(0, 0, 200, 150);
      ctx.globalCompositeOperation = 'multiply';
      ctx.drawImage(small, 40, 5, 120, 140);
      ctx.globalCompositeOperation = 'source-over';
      writeFileSync(file, photo.toBuffer('image/png'));
    } else {
      copyFileSync(files[d], file);
    }
    files.push(file);
  }
  assert.ok(files.join(' ').length > 200_000);
  const run = await classify(['--model', fixture.model, '--json', ...files]);
  assert.equal(run.code, 0, run.stderr);
  const results = parseResults(run, files);
  assert.ok(results.every((r) => r.ok && r.preparation === 'ink'));
  assert.ok(accuracy(results) >= 0.9, `accuracy ${accuracy(results)}`);
  // Streamed: the first result was out long before the last (the old CLI printed everything at the end).
  assert.ok(run.firstLineMs < run.totalMs / 4, `first result after ${run.firstLineMs} of ${run.totalMs} ms`);
  // Bounded: the peak after 1,000 results grows little over the last 4,000 files. Keeping what each file costs
  // (its decoded 200x150 picture: 120 KB; its prepared input: 12 KB) would add 48-480 MB.
  const warm = run.peaks.find((p) => p.lines >= 1000),
    last = run.peaks.at(-1);
  assert.ok(warm && last && last.lines >= 4500, `too few RSS samples: ${JSON.stringify(run.peaks.slice(-3))}`);
  const growthMiB = (last.hwmKiB - warm.hwmKiB) / 1024;
  console.log(
    `# 5,000 files in ${(run.totalMs / 1000).toFixed(1)} s, first result after ${run.firstLineMs} ms; peak RSS ${(warm.hwmKiB / 1024).toFixed(0)} MiB after 1,000 results, ${(last.hwmKiB / 1024).toFixed(0)} MiB at the end`,
  );
  assert.ok(growthMiB < 40, `peak RSS grew ${growthMiB.toFixed(1)} MiB over the last 4,000 files`);
  assert.ok(last.hwmKiB < 512 * 1024, `peak RSS ${(last.hwmKiB / 1024).toFixed(0)} MiB`);
});

test('test sets as PNG files: on MNIST the CLI scores what tools:evaluate does; on MNIST-M-style textured backgrounds at least what the pictures fed as they are score', {
  timeout: 300_000,
}, async () => {
  // tools:evaluate on a copy of the run (it writes results into the run folder), over the full test sets, while the
  // PNG files are written and classified. Its MNIST-M-style accuracy is the pictures fed as they are: straight
  // through the model's preprocessing.
  const evalRun = join(dir, 'evaluated');
  cpSync(fixture.runDir, evalRun, { recursive: true });
  // The first 5,000 of each set: the comparisons are paired (the same pictures both ways), and the CLI changes the
  // prediction of a few per cent of the textured pictures only (it takes ~96% of them whole), so the MNIST-M-style
  // margin (~1 point, ~50 pictures here) stays many times its chance variation, in half the time of all 10,000.
  const count = 5000;
  const evaluated = runScript('tools/src/evaluate.ts', [evalRun, '--limit', String(count)]);
  const scores: Record<string, { cli: number; frame: number }> = {};
  for (const name of ['mnist', 'mnistm'] as const) {
    const set = loadDataset(name, 'test', { limit: count });
    const sub = join(dir, name);
    const files = writeSetPngs(set, sub, name);
    const run = await classify(['--model', fixture.model, '--json', ...files]);
    assert.equal(run.code, 0, run.stderr);
    const results = parseResults(run, files);
    scores[name] = {
      cli: accuracy(results),
      frame: results.filter((r) => r.preparation === 'frame').length / results.length,
    };
    rmSync(sub, { recursive: true, force: true });
  }
  await evaluated;
  const r = JSON.parse(readFileSync(join(evalRun, 'results.json'), 'utf8')) as {
    source: { accuracy: number; count: number };
    target: { accuracy: number; count: number };
  };
  assert.deepEqual([r.source.count, r.target.count], [count, count]);
  console.log(
    `# MNIST test PNGs: CLI ${scores.mnist.cli.toFixed(4)}, tools:evaluate ${r.source.accuracy.toFixed(4)}; ` +
      `MNIST-M-style test PNGs: CLI ${scores.mnistm.cli.toFixed(4)} (${(scores.mnistm.frame * 100).toFixed(1)}% as whole pictures), as they are ${r.target.accuracy.toFixed(4)}`,
  );
  assert.equal(scores.mnist.frame, 0, 'clean MNIST digits are cropped to the ink');
  assert.ok(
    Math.abs(scores.mnist.cli - r.source.accuracy) <= 0.01,
    `MNIST: CLI ${scores.mnist.cli} vs tools:evaluate ${r.source.accuracy}`,
  );
  assert.ok(scores.mnistm.frame > 0.9, `only ${scores.mnistm.frame} of the textured pictures were taken whole`);
  assert.ok(
    scores.mnistm.cli >= r.target.accuracy,
    `MNIST-M-style: CLI ${scores.mnistm.cli} vs fed as they are ${r.target.accuracy}`,
  );
});

/** A data folder whose usps/ holds the real ESL test file, or undefined. */
const uspsDataDir = [process.env.DANN_DATA_DIR, join(ROOT, 'data'), join(ROOT, '../shared/data')].find(
  (d) => d !== undefined && existsSync(join(d, 'usps', 'zip.test.gz')),
);
test('real handwriting from another collection: 300 USPS test digits written by tools:write-pngs, scored by the CLI from their names', {
  timeout: 120_000,
  skip: uspsDataDir
    ? false
    : 'skipped: the real USPS files are not in $DANN_DATA_DIR/usps, data/usps or ../shared/data/usps; run `npx nx run tools:download-data -- usps` to test them',
}, async () => {
  const sub = join(dir, 'usps');
  const wrote = await runScript('tools/src/write-pngs.ts', [
    'usps',
    '--out',
    sub,
    '--limit',
    '300',
    '--data-dir',
    uspsDataDir!,
  ]);
  assert.match(wrote, /wrote 300 22x22 PNG files of usps\/test/);
  const files = readdirSync(sub)
    .sort()
    .map((f) => join(sub, f));
  const run = await classify(['--model', fixture.model, ...files]);
  assert.equal(run.code, 0, run.stderr);
  const summary = /accuracy against the digit their names end in \(NAME-<digit>\.png\): ([\d.]+) \((\d+) of 300\)/.exec(
    run.lines.join('\n'),
  );
  assert.ok(summary, run.lines.slice(-3).join('\n'));
  const results = run.lines.filter((l) => /: \d \(p /.test(l));
  const right = results.filter((l) => {
    const m = /-(\d)\.png: (\d) \(p /.exec(l)!;
    return m[1] === m[2];
  }).length;
  assert.equal(Number(summary[2]), right, 'the summary counts what the lines say');
  // The shared model learnt MNIST alone, briefly: USPS digits cropped to their ink and framed like MNIST's read well.
  assert.ok(Number(summary[1]) >= 0.85, `USPS accuracy ${summary[1]}`);
  console.log(`# 300 USPS test PNGs, the shared MNIST model through the CLI: ${summary[1]}`);
});
