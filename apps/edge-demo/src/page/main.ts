/**
 * The edge demo page: draw a digit (mouse, pen or touch) or drop an image; the exported ONNX model classifies
 * it in the browser with onnxruntime-web (wasm). Preparation is the same module the Node CLI uses.
 */
import { prepareDigit, type RgbaImage } from '@dann/data';
import { checkModelInfo } from '@dann/onnx';
import { describeModel, rank, SESSION_OPTIONS } from '../predict.ts';

type Ort = typeof import('onnxruntime-web');
/** Served by edge-demo:serve from onnxruntime-web's dist folder; loaded at run time, not bundled. */
const ORT_URL = '/ort/ort.wasm.min.mjs';
const MAX_SIDE = 512;
const STROKE = 20;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const pad = $<HTMLCanvasElement>('pad');
const seen = $<HTMLCanvasElement>('seen');
const status = $('status');
const ctx = pad.getContext('2d', { willReadFrequently: true })!;

function say(text: string, error = false): void {
  status.textContent = text;
  status.classList.toggle('error', error);
}

function clearPad(): void {
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, pad.width, pad.height);
}

function showSeen(mnist: Uint8Array): void {
  const img = new ImageData(28, 28);
  mnist.forEach((v, i) => img.data.set([v, v, v, 255], i * 4));
  seen.getContext('2d')!.putImageData(img, 0, 0);
}

function showProbabilities(p: ArrayLike<number> | null): void {
  const bars = $('bars');
  bars.replaceChildren();
  const best = p ? rank(p).digit : -1;
  for (let k = 0; k < 10; k++) {
    const v = p ? p[k] : 0;
    const bar = document.createElement('div');
    bar.className = k === best ? 'bar best' : 'bar';
    bar.style.width = `${(v * 100).toFixed(1)}%`;
    const label = document.createElement('span');
    label.textContent = String(k);
    const value = document.createElement('span');
    value.textContent = p ? v.toFixed(3) : '';
    const track = document.createElement('div');
    track.append(bar);
    bars.append(label, track, value);
  }
  bars.dataset.probabilities = p ? JSON.stringify(Array.from(p)) : '';
}

async function main(): Promise<void> {
  showProbabilities(null);
  clearPad();
  let ort: Ort;
  try {
    ort = (await import(/* @vite-ignore */ ORT_URL)) as Ort;
  } catch {
    return say(`onnxruntime-web did not load from ${ORT_URL}; start the page with npx nx run edge-demo:serve.`, true);
  }
  ort.env.wasm.wasmPaths = '/ort/';
  // Threads need cross-origin isolation (SharedArrayBuffer); one thread is plenty for this model.
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  const infoResponse = await fetch('/model.json');
  if (!infoResponse.ok)
    return say('the server has no model.json next to the model; export one with tools:export-onnx.', true);
  const info = checkModelInfo(await infoResponse.json(), 'model.json');
  $('model').textContent =
    `${describeModel(info)}; onnxruntime-web ${ort.env.versions.web}, wasm, ${ort.env.wasm.numThreads} thread(s)`;
  let session: import('onnxruntime-web').InferenceSession;
  try {
    session = await ort.InferenceSession.create('/model.onnx', {
      ...SESSION_OPTIONS,
      intraOpNumThreads: ort.env.wasm.numThreads,
      executionProviders: ['wasm'],
    });
  } catch (e) {
    return say(`the model did not load: ${(e as Error).message}`, true);
  }
  const run = async (input: Float32Array) => {
    const out = await session.run({ [info.input.name]: new ort.Tensor('float32', input, [1, 32, 32, 3]) });
    return out.probabilities.data as Float32Array;
  };
  for (let i = 0; i < 3; i++) await run(new Float32Array(32 * 32 * 3)); // warm-up: first runs allocate and compile
  const latencies: number[] = [];
  let busy = false,
    again: RgbaImage | null = null;

  async function classify(img: RgbaImage): Promise<void> {
    if (busy) {
      again = img;
      return;
    }
    busy = true;
    const digit = prepareDigit(img);
    showSeen(digit.mnist);
    if (digit.empty) {
      $('prediction').textContent = '';
      delete $('prediction').dataset.digit;
      showProbabilities(null);
      say('no digit yet: draw one');
    } else {
      const t0 = performance.now();
      const p = await run(digit.input);
      const ms = performance.now() - t0;
      latencies.push(ms);
      const sorted = [...latencies].sort((a, b) => a - b);
      const r = rank(p);
      $('prediction').textContent = String(r.digit);
      $('prediction').dataset.digit = String(r.digit);
      showProbabilities(p);
      $('latency').textContent =
        `inference ${ms.toFixed(2)} ms (median ${sorted[sorted.length >> 1].toFixed(2)} ms over ${latencies.length}, after warm-up)`;
      $('latency').dataset.ms = ms.toFixed(4);
      say(
        `${r.digit} with probability ${r.probability.toFixed(3)}; top-3 ${r.top3.map((t) => `${t.digit} ${t.probability.toFixed(3)}`).join(', ')}`,
      );
    }
    $('prediction').dataset.count = String(Number($('prediction').dataset.count ?? 0) + 1);
    busy = false;
    if (again) {
      const next = again;
      again = null;
      await classify(next);
    }
  }
  const classifyPad = () => classify(ctx.getImageData(0, 0, pad.width, pad.height));

  // Drawing with any pointer: mouse, pen, touch.
  let drawing = false;
  const at = (e: PointerEvent) => {
    const r = pad.getBoundingClientRect();
    return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height];
  };
  pad.addEventListener('pointerdown', (e) => {
    drawing = true;
    pad.setPointerCapture(e.pointerId);
    const [x, y] = at(e);
    ctx.strokeStyle = '#000';
    ctx.lineWidth = STROKE;
    ctx.lineCap = ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.lineTo(x, y);
    ctx.stroke();
  });
  pad.addEventListener('pointermove', (e) => {
    if (!drawing) return;
    const [x, y] = at(e);
    ctx.lineTo(x, y);
    ctx.stroke();
    if (!busy) void classifyPad();
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    void classifyPad();
  };
  pad.addEventListener('pointerup', end);
  pad.addEventListener('pointercancel', end);
  $('clear').addEventListener('click', () => {
    clearPad();
    void classifyPad();
  });

  // Dropped or chosen image files.
  async function openFile(file: File | undefined): Promise<void> {
    if (!file) return;
    let bitmap: ImageBitmap;
    try {
      bitmap = await createImageBitmap(file);
    } catch {
      return say(`${file.name} is not an image this browser can read.`, true);
    }
    const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
    const w = Math.max(1, Math.round(bitmap.width * scale)),
      h = Math.max(1, Math.round(bitmap.height * scale));
    const work = new OffscreenCanvas(w, h).getContext('2d')!;
    work.drawImage(bitmap, 0, 0, w, h);
    // Show it on the pad too (fitted), so what is classified is visible.
    clearPad();
    const fit = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
    ctx.drawImage(
      bitmap,
      (pad.width - bitmap.width * fit) / 2,
      (pad.height - bitmap.height * fit) / 2,
      bitmap.width * fit,
      bitmap.height * fit,
    );
    await classify(work.getImageData(0, 0, w, h));
  }
  pad.addEventListener('dragover', (e) => {
    e.preventDefault();
    pad.classList.add('dragover');
  });
  pad.addEventListener('dragleave', () => pad.classList.remove('dragover'));
  pad.addEventListener('drop', (e) => {
    e.preventDefault();
    pad.classList.remove('dragover');
    void openFile(e.dataTransfer?.files[0]);
  });
  $<HTMLInputElement>('file').addEventListener(
    'change',
    (e) => void openFile((e.target as HTMLInputElement).files?.[0]),
  );

  say('ready: draw a digit');
  document.body.dataset.ready = 'true';
}

main().catch((e) => say(`the page failed: ${(e as Error).message}`, true));
