import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DatasetName } from '@dann/data';
import { architectureOf, DannNetwork, loadCheckpoint, type Checkpoint, type TrainConfig } from '@dann/models';

/** What trainer:train writes to runs/NAME/config.json. */
export interface RunConfig {
  options: { source: DatasetName; target: DatasetName; method: string };
  train: TrainConfig;
}

export interface LoadedRun {
  readonly config: RunConfig;
  readonly file: string;
  readonly checkpoint: Checkpoint<TrainConfig>;
  readonly net: DannNetwork;
}

/** A run directory's config and chosen checkpoint (best = lowest source-validation loss, or last). */
export function loadRun(dir: string, which: 'best' | 'last' = 'best'): LoadedRun {
  const configFile = join(dir, 'config.json');
  if (!existsSync(configFile))
    throw new Error(`${dir} is not a run directory (no config.json); train one with npx nx run trainer:train.`);
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as RunConfig;
  const file = join(dir, which === 'best' && existsSync(join(dir, 'best.bin')) ? 'best.bin' : 'checkpoint.bin');
  const checkpoint = loadCheckpoint<TrainConfig>(file);
  return { config, file, checkpoint, net: new DannNetwork(architectureOf(checkpoint.config), checkpoint.weights) };
}
