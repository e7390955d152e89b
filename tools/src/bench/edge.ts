import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCanvas } from '@napi-rs/canvas';
import { chooseChromium, launchBrowser } from '@dann/edge-demo/browser';
import { loadMnist, type ImageSet } from '@dann/data';
import { selectBackend } from '@dann/backend';
import { exportOnnx, scoreOnnx, verificationImages } from '@dann/onnx';
import { loadRun } from '../runs.ts';
import { formatSummary, markdownTable, summarize, type Summary } from './stats.ts';

export interface EdgeResult {
  readonly run: string;
  readonly pair: string;
  readonly models: {
    readonly quantization: 'fp32' | 'int8';
    readonly bytes: number;
    readonly accuracy: { source: number; target: number };
    /** In Chromium: the page's own inference time per digit, and drop -> answer on screen. */
    readonly page?: { inference: Summary; roundTrip: Summary };
  }[];
  /** The Chromium the page ran in (edge-demo's browser.ts chooses it), when it ran. */
  readonly browser?: string;
  readonly testImages: number;
}

/** PNG bytes of image k of MNIST's test set (white on black, 28x28). */
function mnistPng(mnist: ImageSet, k: number): Buffer {
  const c = createCanvas(28, 28);
  const img = c.getContext('2d').createImageData(28, 28);
  for (let i = 0; i < 784; i++)
    img.data.set([mnist.images[k * 784 + i], mnist.images[k * 784 + i], mnist.images[k * 784 + i], 255], i * 4);
  c.getContext('2d').putImageData(img, 0, 0);
  return c.toBuffer('image/png');
}

/** Serves `model` with edge-demo:serve, opens the page in a fresh headless Chromium, and classifies `digits` dropped files one by one. */
async function pageLatency(
  model: string,
  digits: number,
  dir: string,
): Promise<{ inference: Summary; roundTrip: Summary; browser: string }> {
  const { browser, choice } = await launchBrowser();
  const server = spawn(
    process.execPath,
    ['--import', 'tsx', 'apps/edge-demo/src/serve.ts', '--model', model, '--port', '0'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  server.stdout!.on('data', (d) => (out += d));
  try {
    let url: string | undefined;
    for (let waited = 0; !(url = /edge demo on (http:\S+)/.exec(out)?.[1]); waited += 100) {
      if (waited > 60_000 || server.exitCode !== null) throw new Error(`edge-demo:serve did not start: ${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const page = await browser.newPage();
    await page.goto(url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
    const inference: number[] = [],
      roundTrip: number[] = [];
    const mnist = loadMnist('test');
    for (let k = 0; k < digits; k++) {
      const file = join(dir, `digit-${k}.png`);
      writeFileSync(file, mnistPng(mnist, k));
      const count = Number((await page.getAttribute('#prediction', 'data-count')) ?? 0);
      const t0 = performance.now();
      await page.setInputFiles('#file', file);
      await page.waitForFunction((n) => Number(document.getElementById('prediction')!.dataset.count) > n, count);
      roundTrip.push(performance.now() - t0);
      inference.push(Number(await page.getAttribute('#latency', 'data-ms')));
    }
    return {
      inference: summarize(inference),
      roundTrip: summarize(roundTrip),
      browser: `${choice.describe}, Chromium ${browser.version()}`,
    };
  } finally {
    await browser.close();
    server.kill('SIGTERM');
  }
}

/**
 * The edge side of a trained run: its model exported as fp32 and int8 (in a temporary folder), their sizes,
 * their accuracy in onnxruntime-node on the test sets, and per-digit latency of the page in Chromium.
 */
export async function benchEdge(
  run: string,
  testImages: number,
  digits: number,
  log: (line: string) => void,
): Promise<EdgeResult> {
  if (!existsSync(join(run, 'config.json')))
    throw new Error(
      `the edge benchmark needs a trained run: ${run} has none (run npm start, or pass --run runs/NAME).`,
    );
  await selectBackend({ backend: 'wasm', log: () => {} });
  const { config, checkpoint, weights, net } = loadRun(run);
  net.dispose();
  const { source, target } = config.run.data;
  const { method } = config.run.train;
  const dir = mkdtempSync(join(tmpdir(), 'bench-edge-'));
  // No Chromium (see edge-demo's browser.ts) is one sentence, and the rest is still measured.
  const hasBrowser = await chooseChromium().then(
    () => true,
    (e: Error) => {
      log(`${e.message} The page latency is not measured.`);
      return false;
    },
  );
  let browser: string | undefined;
  try {
    const request = {
      arch: net.arch,
      weights,
      training: { source, target, method, network: checkpoint.arch, step: checkpoint.step },
      verify: verificationImages([source, target], 128),
    };
    const sets = [source, target].map((name) => verificationImages([name], testImages));
    const models: EdgeResult['models'][number][] = [];
    for (const quantization of ['fp32', 'int8'] as const) {
      const file = join(dir, `model-${quantization}.onnx`);
      await exportOnnx({ ...request, file, quantization: quantization === 'int8' ? 'int8' : 'none' });
      const [s, t] = await scoreOnnx(file, net.arch.input, sets);
      const accuracy = { source: s, target: t };
      log(
        `${quantization}: ${statSync(file).size} bytes, accuracy ${accuracy.source.toFixed(4)} / ${accuracy.target.toFixed(4)}`,
      );
      const measured = hasBrowser ? await pageLatency(file, digits, dir) : undefined;
      if (measured) log(`${quantization}: page in ${(browser = measured.browser)}`);
      models.push({
        quantization,
        bytes: statSync(file).size,
        accuracy,
        page: measured && { inference: measured.inference, roundTrip: measured.roundTrip },
      });
    }
    return {
      run,
      pair: `${source} -> ${target}`,
      models,
      testImages: Math.min(sets[0].labels.length, sets[1].labels.length),
      browser,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function edgeReport(r: EdgeResult): string {
  const [fp32] = r.models;
  const pts = (a: number, b: number) => `${(a - b) * 100 >= 0 ? '+' : ''}${((a - b) * 100).toFixed(2)}`;
  return (
    `Run \`${r.run}\` (${r.pair}); accuracy in onnxruntime-node on the first ${r.testImages} test images per domain; page latency: MNIST test digits opened one by one in the page in headless Chromium${r.browser ? ` (${r.browser})` : ''} (onnxruntime-web ${JSON.parse(readFileSync('node_modules/onnxruntime-web/package.json', 'utf8')).version}, wasm, 1 thread), inference as the page reports it after warm-up, and file chosen -> answer on screen (decode, preparation, inference, drawing).\n\n` +
    markdownTable(
      ['model', 'size', 'source acc', 'target acc', 'vs fp32 (points)', 'page inference ms', 'file -> answer ms'],
      r.models.map((m) => [
        m.quantization,
        `${(m.bytes / 1024).toFixed(0)} KiB (${((m.bytes / fp32.bytes) * 100).toFixed(0)}%)`,
        m.accuracy.source.toFixed(4),
        m.accuracy.target.toFixed(4),
        `${pts(m.accuracy.source, fp32.accuracy.source)} / ${pts(m.accuracy.target, fp32.accuracy.target)}`,
        m.page ? formatSummary(m.page.inference, 2) : 'not measured',
        m.page ? formatSummary(m.page.roundTrip, 1) : 'not measured',
      ]),
    )
  );
}
