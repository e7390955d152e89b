import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunRecord } from '@dann/engine';
import { architectureOf, DannNetwork, loadCheckpoint, type Checkpoint, type TrainConfig } from '@dann/training';

export interface LoadedRun {
  readonly config: RunRecord;
  readonly file: string;
  readonly checkpoint: Checkpoint<TrainConfig>;
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
  return { config, file, checkpoint, net: new DannNetwork(architectureOf(checkpoint.config), checkpoint.weights) };
}
