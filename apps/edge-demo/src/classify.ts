import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { createCanvas, loadImage, type Image } from '@napi-rs/canvas';
import * as ort from 'onnxruntime-node';
import { INPUT_SIZE, prepareDigit, type PreparedDigit, type RgbaImage } from '@dann/data';
import { parseCommand, positiveInt, runMain } from '@dann/cli';
import { openModelFiles } from './model-files.ts';
import { describeModel, rank, SESSION_OPTIONS, type Ranked } from './predict.ts';

/**
 * onnxruntime-node 1.30's native library starts Microsoft's 1DS telemetry with the first session. On Linux that
 * reads this process's /proc/self/cmdline and matches it with a std::regex, whose recursive matcher uses stack in
 * proportion to the command line's length: past ~28 KB (about 1,100 image paths of 25 characters, what a shell glob
 * over a folder gives) the stack overflows and the process dies with SIGSEGV (exit 139) before anything is printed.
 * ORT_DISABLE_TELEMETRY skips that code (and the telemetry). The library reads it when the first session is
 * created, so setting it here, before any session, is early enough. Tested with 5,000 files in classify.test.ts.
 */
process.env.ORT_DISABLE_TELEMETRY = '1';

const command = {
  name: 'classify',
  summary:
    'Classifies digit images (PNG/JPEG, any size, light or dark background, colour or grey) with an exported ONNX model; ' +
    'each result is printed as soon as its batch is done, so any number of files streams through in bounded memory.',
  usage: 'npx nx run edge-demo:classify -- --model runs/NAME/model.onnx a.png b.jpg ...',
  options: {
    model: {
      type: 'string',
      description: 'the ONNX model (its model.json sidecar must sit next to it)',
      default: 'runs/main/model.onnx',
    },
    json: {
      type: 'boolean',
      description: 'print one JSON object per file, one per line (JSON Lines), instead of text',
    },
    batch: { type: 'string', description: 'images per onnxruntime run', default: '32' },
  },
} as const;

/** Larger pictures are shrunk to this longest side before preparation (the digit ends up 20 px anyway). */
const MAX_SIDE = 512;
/** Files read and decoded ahead of the one being prepared (overlaps file reads and image decoding with the rest). */
const READ_AHEAD = 2;

/** Decodes an image file to RGBA pixels; one sentence when it is not an image. */
async function decode(file: string): Promise<RgbaImage> {
  if (!existsSync(file)) throw new Error('no such file');
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw new Error(`cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let image: Image;
  try {
    image = await loadImage(bytes);
  } catch {
    throw new Error('not a readable PNG or JPEG image');
  }
  if (!(image.width > 0 && image.height > 0)) throw new Error('the image is empty');
  const scale = Math.min(1, MAX_SIDE / Math.max(image.width, image.height));
  const w = Math.max(1, Math.round(image.width * scale)),
    h = Math.max(1, Math.round(image.height * scale));
  const ctx = createCanvas(w, h).getContext('2d');
  ctx.drawImage(image, 0, 0, w, h);
  return ctx.getImageData(0, 0, w, h);
}

type Prepared = { file: string } & ({ ok: true; digit: PreparedDigit } | { ok: false; error: string });

/** One file decoded and prepared; never rejects (a bad file is an outcome, not an exception). */
async function prepareFile(file: string): Promise<Prepared> {
  try {
    return { file, ok: true, digit: prepareDigit(await decode(file)) };
  } catch (e) {
    return { file, ok: false, error: (e as Error).message };
  }
}

/** The files prepared in their order, with at most `ahead` more in flight: memory does not grow with the file count. */
async function* preparedInOrder(files: readonly string[], ahead: number): AsyncGenerator<Prepared> {
  const inFlight: Promise<Prepared>[] = [];
  let next = 0;
  while (next < files.length && inFlight.length <= ahead) inFlight.push(prepareFile(files[next++]));
  while (inFlight.length > 0) {
    const done = await inFlight.shift()!;
    if (next < files.length) inFlight.push(prepareFile(files[next++]));
    yield done;
  }
}

type Outcome = { file: string } & (
  | ({ ok: true; latencyMs: number; empty: boolean; preparation: PreparedDigit['mode'] } & Ranked)
  | { ok: false; error: string }
);

function textLine(o: Outcome): string {
  if (!o.ok) return `${o.file}: error: ${o.error}; skipped.`;
  const notes = [
    o.empty ? 'no ink found: blank image' : '',
    o.preparation === 'frame' ? 'textured background: the whole picture as is' : '',
  ].filter(Boolean);
  return `${o.file}: ${o.digit} (p ${o.probability.toFixed(3)})  top-3 ${o.top3.map((t) => `${t.digit} ${t.probability.toFixed(3)}`).join(', ')}  ${o.latencyMs.toFixed(2)} ms${notes.map((n) => `  (${n})`).join('')}`;
}

/** A file name that ends in its label, as tools:write-pngs writes them. */
const LABELLED = /-(\d)\.png$/i;

runMain(async () => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const { values: v, positionals: files } = args;
  if (files.length === 0) throw new Error('name at least one image file (see --usage).');
  const batchSize = positiveInt('batch', v.batch);
  const { info } = openModelFiles(v.model);
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(v.model, SESSION_OPTIONS);
  } catch (e) {
    throw new Error(`onnxruntime could not load ${v.model}: ${(e as Error).message.split('\n')[0]}`);
  }
  // One input buffer for every batch: the pictures' inputs are copied in, then the batch runs and is printed.
  const inputs = new Float32Array(batchSize * INPUT_SIZE);
  const infer = async (count: number): Promise<Float32Array> => {
    const tensor = new ort.Tensor('float32', inputs.subarray(0, count * INPUT_SIZE), [count, 32, 32, 3]);
    const out = await session.run({ [info.input.name]: tensor });
    return out.probabilities.data as Float32Array;
  };
  await infer(Math.min(batchSize, files.length)); // warm-up: the first run at a batch size allocates

  // Each result goes out as soon as it is known (stdout is synchronous for files and pipes on Linux), so a
  // failure later on cannot lose it, and the output is in the order the files were given.
  const emit = v.json ? (o: Outcome) => console.log(JSON.stringify(o)) : (o: Outcome) => console.log(textLine(o));
  if (!v.json) console.log(`model: ${v.model} (${describeModel(info)})`);
  let classified = 0,
    failed = 0;
  // Files named NAME-<digit>.png (tools:write-pngs) carry their label: the summary scores them.
  let labelled = 0,
    correct = 0;
  const started = performance.now();
  let batch: Prepared[] = [];
  const flush = async () => {
    const good = batch.filter((p): p is Prepared & { ok: true } => p.ok);
    good.forEach((p, i) => inputs.set(p.digit.input, i * INPUT_SIZE));
    let probabilities: Float32Array = new Float32Array(0),
      perImageMs = 0;
    if (good.length > 0) {
      const t0 = performance.now();
      probabilities = await infer(good.length);
      perImageMs = (performance.now() - t0) / good.length;
    }
    let k = 0;
    for (const p of batch) {
      if (!p.ok) {
        failed++;
        emit({ file: p.file, ok: false, error: p.error });
        continue;
      }
      classified++;
      const ranked = rank(probabilities.subarray(k * 10, (k + 1) * 10));
      k++;
      const label = LABELLED.exec(p.file);
      if (label) {
        labelled++;
        if (Number(label[1]) === ranked.digit) correct++;
      }
      emit({
        file: p.file,
        ok: true,
        latencyMs: perImageMs,
        empty: p.digit.empty,
        preparation: p.digit.mode,
        ...ranked,
      });
    }
    batch = [];
  };
  for await (const prepared of preparedInOrder(files, READ_AHEAD)) {
    batch.push(prepared);
    if (batch.length === batchSize) await flush();
  }
  await flush();
  await session.release();
  if (!v.json) {
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `${files.length} files: ${classified} classified, ${failed} skipped; ${seconds.toFixed(1)} s (${((seconds * 1000) / files.length).toFixed(2)} ms per file)`,
    );
    if (labelled > 0)
      console.log(
        `accuracy against the digit their names end in (NAME-<digit>.png): ${(correct / labelled).toFixed(4)} (${correct} of ${labelled})`,
      );
  }
  if (failed > 0) process.exitCode = 1;
});
