/**
 * One training-throughput measurement in its own process (so peak RSS and the wasm heap belong to
 * this configuration only): `tsx tools/src/bench/train-worker.ts PRESET BATCH METHOD DEVICE RUNS MAX_SECONDS`.
 * Prints one JSON line (TrainMeasurement).
 */
import * as tf from '@tensorflow/tfjs-core';
import { createRng, preprocessBatch, INPUT_SIZE, type ImageSet } from '@dann/data';
import { summarize } from './stats.ts';
import { PRESETS, Trainer, type Method, type PresetName } from '@dann/training';
import { selectBackend, type WasmKernelSet } from '@dann/backend';

/** Where a measurement trains: wasm with one of its kernel sets, or the first WebGPU adapter (a software one will do). */
export type TrainDevice = WasmKernelSet | 'webgpu';
export const TRAIN_DEVICES: readonly TrainDevice[] = ['reference', 'project', 'webgpu'];

export interface TrainMeasurement {
  preset: string;
  batch: number;
  method: Method;
  device: TrainDevice;
  /** The backend's own description of the device (the GPU adapter's name on webgpu). */
  deviceName: string;
  /** Source samples per second, one value per timed step. */
  samplesPerSec: number[];
  /** Milliseconds per part of a step (medians): batch preparation, gradient, update. */
  split: { prepare: number; gradient: number; apply: number };
  /** Kernel name -> ms in one profiled step. */
  kernelMs: Record<string, number>;
  numTensorsStable: boolean;
  peakRssMB: number;
}

function randomImages(count: number, seed: number): ImageSet {
  const rng = createRng(seed);
  const images = new Uint8Array(count * 28 * 28);
  for (let i = 0; i < images.length; i++) images[i] = rng.int(256);
  return {
    name: `random-${seed}`,
    count,
    height: 28,
    width: 28,
    channels: 1,
    images,
    labels: Uint8Array.from({ length: count }, () => rng.int(10)),
  };
}

/**
 * Times `runs` training steps after one warm-up step (fewer when `maxSeconds` of timed steps run out,
 * but at least 2), then profiles one more step per kernel.
 */
export async function measureTraining(
  preset: PresetName,
  batch: number,
  method: Method,
  device: TrainDevice,
  runs: number,
  maxSeconds: number,
): Promise<TrainMeasurement> {
  const { device: deviceName } =
    device === 'webgpu'
      ? await selectBackend({ backend: 'webgpu', strictDevice: true })
      : await selectBackend({ backend: 'wasm', wasmKernels: device });
  const steps = runs + 2;
  const source = randomImages(batch * steps, 1),
    target = randomImages(batch * steps, 2);
  const trainer = new Trainer(
    {
      preset,
      method,
      epochs: 1,
      batchSize: batch,
      optimizer: { kind: 'adam' },
      lr: 1e-4,
      lrSchedule: 'paper',
      lambdaMax: 1,
      lambdaGamma: 10,
      domainWeight: 1,
      seed: 1,
    },
    source,
    target,
  );
  const prepBuffer = new Float32Array(batch * INPUT_SIZE);
  const times = { prepare: [] as number[], gradient: [] as number[], apply: [] as number[] };
  const samplesPerSec: number[] = [];
  let tensorsAfterWarmup = -1;
  let stable = true;
  const started = performance.now();
  for (let s = 0; s < steps - 1; s++) {
    if (s > 2 && performance.now() - started > maxSeconds * 1000) break;
    const b = trainer.batchAt(trainer.step);
    const t0 = performance.now();
    preprocessBatch(source, b.source, prepBuffer);
    if (method === 'dann') preprocessBatch(target, b.target, prepBuffer);
    const t1 = performance.now();
    const g = await trainer.gradient(); // prepares its own batch again: the split subtracts it below
    const t2 = performance.now();
    trainer.apply(g.gradient, g.lr);
    const t3 = performance.now();
    if (s === 0) {
      tensorsAfterWarmup = tf.memory().numTensors;
      continue;
    }
    if (tf.memory().numTensors !== tensorsAfterWarmup) stable = false;
    times.prepare.push(t1 - t0);
    times.gradient.push(t2 - t1 - (t1 - t0));
    times.apply.push(t3 - t2);
    samplesPerSec.push((batch * 1000) / (t3 - t1));
  }
  const profile = await tf.profile(async () => {
    const g = await trainer.gradient();
    trainer.apply(g.gradient, g.lr);
  });
  const kernelMs: Record<string, number> = {};
  for (const k of profile.kernels) kernelMs[k.name] = (kernelMs[k.name] ?? 0) + (k.kernelTimeMs as number);
  trainer.dispose();
  return {
    preset,
    batch,
    method,
    device,
    deviceName,
    samplesPerSec,
    split: {
      prepare: summarize(times.prepare).median,
      gradient: summarize(times.gradient).median,
      apply: summarize(times.apply).median,
    },
    kernelMs,
    numTensorsStable: stable,
    peakRssMB: process.resourceUsage().maxRSS / 1024,
  };
}

if (process.argv[1]?.endsWith('train-worker.ts')) {
  const [preset, batch, method, device, runs, maxSeconds] = process.argv.slice(2);
  if (!(preset in PRESETS)) throw new Error(`unknown preset ${preset}`);
  if (!TRAIN_DEVICES.includes(device as TrainDevice)) throw new Error(`unknown device ${device}`);
  const m = await measureTraining(
    preset as PresetName,
    Number(batch),
    method as Method,
    device as TrainDevice,
    Number(runs),
    Number(maxSeconds),
  );
  console.log(JSON.stringify(m));
}
