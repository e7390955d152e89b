import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadDataset, sliceSet, type ImageSet } from '@dann/data';
import {
  architectureOf,
  DannNetwork,
  loadCheckpoint,
  modelWeights,
  paramSpecs,
  type RunConfig,
  type TrainConfig,
} from '@dann/training';

/** The training sets of a run: the source set less its validation hold-out (its last images), and the target set. */
export interface RunData {
  readonly sourceTrain: ImageSet;
  readonly sourceVal: ImageSet;
  readonly targetTrain: ImageSet;
}

export interface DataOptions {
  readonly dataDir?: string;
  readonly log?: (line: string) => void;
}

/** Loads a run's training data the same way on the coordinator and on every trainer. */
export function loadRunData(data: RunConfig['data'], o: DataOptions = {}): RunData {
  const opts = { dataDir: o.dataDir, log: o.log, limit: data.limit };
  const sourceAll = loadDataset(data.source, 'train', opts);
  const targetTrain = loadDataset(data.target, 'train', opts);
  const val = Math.min(data.valCount, Math.floor(sourceAll.count / 5));
  return {
    sourceTrain: sliceSet(sourceAll, 0, sourceAll.count - val, `${data.source}/train`),
    sourceVal: sliceSet(sourceAll, sourceAll.count - val, sourceAll.count, `${data.source}/val`),
    targetTrain,
  };
}

/**
 * The initial weights of a run that warm starts (`initFrom`): fresh seeded weights with the feature extractor and
 * label head of the other run's best checkpoint (or its last), copied by tensor name.
 */
export function warmStartWeights(run: RunConfig, log: (line: string) => void = () => {}): Float32Array | undefined {
  const dir = run.initFrom;
  if (dir === undefined) return undefined;
  const file = existsSync(join(dir, 'best.bin')) ? join(dir, 'best.bin') : join(dir, 'checkpoint.bin');
  if (!existsSync(file)) throw new Error(`--init-from ${dir}: it holds no checkpoint (best.bin or checkpoint.bin).`);
  const c = loadCheckpoint<TrainConfig>(file);
  const arch = architectureOf(run.train);
  const weights = DannNetwork.initialWeights(arch, run.train.seed);
  const from = paramSpecs(architectureOf(c.config));
  const model = modelWeights(c.weights, c.optimizer.state);
  for (const spec of paramSpecs(arch).filter((s) => s.group !== 'domain')) {
    const src = from.find((s) => s.name === spec.name && s.size === spec.size);
    if (!src)
      throw new Error(`--init-from ${dir}: its network (${c.arch}) has no ${spec.name} of this network's shape.`);
    weights.set(model.subarray(src.offset, src.offset + src.size), spec.offset);
  }
  log(`warm start from ${file} (step ${c.step}): feature extractor and label head`);
  return weights;
}
