import type { ImageSet } from '@dann/data';
import type { Architecture } from '../architecture.ts';
import type { TrainConfig } from '../trainer.ts';
import { createRng } from '@dann/data';

/** A network small enough for unit tests on 32x32x3 inputs. */
export const TINY: Architecture = {
  name: 'tiny',
  source: 'unit tests',
  input: { height: 32, width: 32, channels: 3 },
  features: [
    { kind: 'conv', filters: 4, kernel: 3, padding: 'same', activation: 'relu' },
    { kind: 'maxpool', size: 4, stride: 4 },
    { kind: 'conv', filters: 6, kernel: 3, padding: 'valid', activation: 'relu' },
    { kind: 'maxpool', size: 2, stride: 2 },
    { kind: 'dropout', rate: 0.1 },
    { kind: 'flatten' },
    { kind: 'dense', units: 24, activation: 'relu' },
  ],
  label: [
    { kind: 'dropout', rate: 0.2 },
    { kind: 'dense', units: 10, activation: 'linear' },
  ],
  domain: [
    { kind: 'dense', units: 8, activation: 'relu' },
    { kind: 'dense', units: 2, activation: 'linear' },
  ],
};

/**
 * A learnable toy domain pair: the class is which of ten cells holds a bright blob.
 * Source is grey on dark; target is the same task in colour on a light background.
 */
export function toyDomain(count: number, seed: number, style: 'source' | 'target'): ImageSet {
  const rng = createRng(seed);
  const channels = style === 'source' ? 1 : 3;
  const images = new Uint8Array(count * 32 * 32 * channels);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const k = rng.int(10);
    labels[i] = k;
    const cy = 4 + Math.floor(k / 4) * 10 + rng.int(3),
      cx = 4 + (k % 4) * 7 + rng.int(3);
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 32; x++) {
        const on = Math.abs(y - cy) < 3 && Math.abs(x - cx) < 3;
        for (let c = 0; c < channels; c++) {
          const base = style === 'source' ? (on ? 220 : 20) : on ? 60 + 40 * c : 200 - 30 * c;
          images[((i * 32 + y) * 32 + x) * channels + c] = Math.max(0, Math.min(255, base + rng.int(30) - 15));
        }
      }
  }
  return { name: `toy-${style}`, count, height: 32, width: 32, channels, images, labels };
}

export function toyConfig(overrides: Partial<TrainConfig> = {}): TrainConfig {
  return {
    preset: 'seed',
    architecture: TINY,
    method: 'dann',
    epochs: 1,
    batchSize: 16,
    optimizer: { kind: 'adam' },
    lr: 3e-3,
    lrSchedule: 'constant',
    lambdaMax: 1,
    lambdaGamma: 10,
    domainWeight: 1,
    seed: 5,
    ...overrides,
  };
}
