import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunRecord } from '@dann/engine';
import {
  architectureOf,
  DannNetwork,
  loadCheckpoint,
  modelWeights,
  type Checkpoint,
  type TrainConfig,
} from '@dann/training';

export interface LoadedRun {
  readonly config: RunRecord;
  readonly file: string;
  readonly checkpoint: Checkpoint<TrainConfig>;
  /** The trained model's weights (the mean teacher where the run keeps one). */
  readonly weights: Float32Array;
  readonly net: DannNetwork;
}

/** A run directory's config and chosen checkpoint (best = lowest source-validation loss, or last). */
export function loadRun(dir: string, which: 'best' | 'last' = 'best'): LoadedRun {
  const configFile = join(dir, 'config.json');
  if (!existsSync(configFile))
    throw new Error(`${dir} is not a run directory (no config.json); train one with npx nx run trainer:train.`);
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as RunRecord;
  if (!config.run?.data)
    throw new Error(
      `${configFile} was written by an older version of the project (no run section); train the run again.`,
    );
  const file = join(dir, which === 'best' && existsSync(join(dir, 'best.bin')) ? 'best.bin' : 'checkpoint.bin');
  const checkpoint = loadCheckpoint<TrainConfig>(file);
  const weights = modelWeights(checkpoint.weights, checkpoint.optimizer.state);
  return { config, file, checkpoint, weights, net: new DannNetwork(architectureOf(checkpoint.config), weights) };
}
