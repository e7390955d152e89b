import * as tf from '@tensorflow/tfjs-core';
import { createRng } from '@dann/data';
import type { Architecture } from '../architecture.ts';
import { DannNetwork } from '../network.ts';
import { computeGradient } from '../step.ts';
import { objectivesOf } from '../objectives/index.ts';

/** max |a - b| / (max |b| + tiny): relative to the reference's scale. */
export function relErr(a: Float32Array, b: Float32Array): number {
  let diff = 0,
    scale = 1e-12;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

/**
 * The largest relative error, per parameter tensor, between the whole DANN gradient (label and domain
 * losses through the GRL) of `arch` on `backend` and on tfjs's cpu backend, for one random batch.
 */
export async function dannGradientErrors(
  arch: Architecture,
  backend: string,
  batch: number,
): Promise<{ name: string; err: number }[]> {
  const { height, width, channels } = arch.input;
  const per = height * width * channels;
  const rng = createRng(1);
  const normal = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  const data = {
    source: normal(batch * per),
    target: normal(batch * per),
    sourceLabels: Uint8Array.from({ length: batch }, () => rng.int(10)),
  };
  const weights = DannNetwork.initialWeights(arch, 1);
  const gradientOn = async (b: string) => {
    await tf.setBackend(b);
    const net = new DannNetwork(arch, weights);
    const { gradient } = await computeGradient(net, data, {
      objectives: objectivesOf({ method: 'dann', domainWeight: 1 }),
      lambda: 0.5,
      seed: 7,
    });
    const specs = net.specs;
    net.dispose();
    return { gradient, specs };
  };
  const want = await gradientOn('cpu');
  const got = await gradientOn(backend);
  return want.specs.map((s) => ({
    name: s.name,
    err: relErr(
      got.gradient.subarray(s.offset, s.offset + s.size),
      want.gradient.subarray(s.offset, s.offset + s.size),
    ),
  }));
}
