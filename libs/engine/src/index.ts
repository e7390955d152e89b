export {
  Coordinator,
  type CoordinatorOptions,
  type Peer,
  type Removed,
  type StepMetrics,
} from './coordinator.ts';
export { StepRound, type Shard } from './round.ts';
export { aggregate, AGGREGATES, DEFAULT_CLIP_FACTOR, type Aggregate } from './aggregate.ts';
export { AppendLog } from './append-log.ts';
export { Replica, type ReplicaOptions, type ReplicaOutcome } from './replica.ts';
export { loadRunData, warmStartWeights, type RunData, type DataOptions } from './run-data.ts';
export { RunFiles, type RunRecord, type EpochLine, type RunFilesOptions } from './run-files.ts';
export { runLocal, type LocalRunOptions } from './local.ts';
