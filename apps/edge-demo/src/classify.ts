import { existsSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createCanvas, loadImage } from '@napi-rs/canvas';
import * as ort from 'onnxruntime-node';
import { prepareDigit, type RgbaImage } from '@dann/data';
import { parseCommand, runMain } from '@dann/protocol';
import { openModelFiles } from './model-files.ts';
import { describeModel, rank, SESSION_OPTIONS, type Ranked } from './predict.ts';

const command = {
  name: 'classify',
  summary: 'Classifies digit images (PNG/JPEG, any size, light or dark background, colour or grey) with an exported ONNX model.',
  usage: 'npx nx run edge-demo:classify -- --model runs/NAME/model.onnx a.png b.jpg ...',
  options: {
    model: { type: 'string', description: 'the ONNX model (its model.json sidecar must sit next to it)', default: 'runs/main/model.onnx' },
    json: { type: 'boolean', description: 'print one JSON array instead of lines' },
  },
} as const;

/** Larger pictures are shrunk to this longest side before preparation (the digit ends up 20 px anyway). */
const MAX_SIDE = 512;

/** Decodes an image file to RGBA pixels; one sentence when it is not an image. */
async function decode(file: string): Promise<RgbaImage> {
  if (!existsSync(file)) throw new Error('no such file');
  let image;
  try {
    image = await loadImage(readFileSync(file));
  } catch {
    throw new Error('not a readable PNG or JPEG image');
  }
  if (!(image.width > 0 && image.height > 0)) throw new Error('the image is empty');
  const scale = Math.min(1, MAX_SIDE / Math.max(image.width, image.height));
  const w = Math.max(1, Math.round(image.width * scale)), h = Math.max(1, Math.round(image.height * scale));
  const ctx = createCanvas(w, h).getContext('2d');
  ctx.drawImage(image, 0, 0, w, h);
  return ctx.getImageData(0, 0, w, h);
}

type Outcome = { file: string } & ({ ok: true; latencyMs: number; empty: boolean } & Ranked | { ok: false; error: string });

runMain(async () => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const { values: v, positionals: files } = args;
  if (files.length === 0) throw new Error('name at least one image file (see --usage).');
  const { info } = openModelFiles(v.model);
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(v.model, SESSION_OPTIONS);
  } catch (e) {
    throw new Error(`onnxruntime could not load ${v.model}: ${(e as Error).message.split('\n')[0]}`);
  }
  const infer = async (input: Float32Array) => {
    const out = await session.run({ [info.input.name]: new ort.Tensor('float32', input, [1, 32, 32, 3]) });
    return out.probabilities.data as Float32Array;
  };
  await infer(new Float32Array(32 * 32 * 3)); // warm-up: the first run allocates
  const outcomes: Outcome[] = [];
  for (const file of files) {
    try {
      const digit = prepareDigit(await decode(file));
      const t0 = performance.now();
      const probabilities = await infer(digit.input);
      outcomes.push({ file, ok: true, latencyMs: performance.now() - t0, empty: digit.empty, ...rank(probabilities) });
    } catch (e) {
      outcomes.push({ file, ok: false, error: (e as Error).message });
    }
  }
  await session.release();
  if (v.json) {
    console.log(JSON.stringify(outcomes, null, 2));
  } else {
    console.log(`model: ${v.model} (${describeModel(info)})`);
    for (const o of outcomes) {
      if (!o.ok) console.log(`${o.file}: error: ${o.error}; skipped.`);
      else console.log(`${o.file}: ${o.digit} (p ${o.probability.toFixed(3)})  top-3 ${o.top3.map((t) => `${t.digit} ${t.probability.toFixed(3)}`).join(', ')}  ${o.latencyMs.toFixed(2)} ms${o.empty ? '  (no ink found: blank image)' : ''}`);
    }
  }
  if (outcomes.some((o) => !o.ok)) process.exitCode = 1;
});
