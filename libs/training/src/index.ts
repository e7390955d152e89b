export {
  PRESETS,
  PRESET_NAMES,
  paramSpecs,
  paramCount,
  featureWidth,
  layerOutput,
  type Architecture,
  type Layer,
  type ParamSpec,
  type PresetName,
  type Group,
} from './architecture.ts';
export { DannNetwork, type ForwardOptions } from './network.ts';
export { gradientReversal, stopGradient } from './grl.ts';
export { lambdaSchedule, lrSchedule, progress } from './schedules.ts';
export {
  objectivesOf,
  labelCrossEntropy,
  domainAdversarial,
  targetEntropy,
  infoMax,
  METHODS,
  type Method,
  type Objective,
  type Forward,
  type TermOutput,
} from './objectives/index.ts';
export { computeGradient, type StepBatch, type StepOptions, type StepResult } from './step.ts';
export {
  applyUpdate,
  createOptimizerState,
  modelWeights,
  l2norm,
  OPTIMIZERS,
  type OptimizerConfig,
  type OptimizerKind,
  type OptimizerState,
  type UpdateInfo,
} from './optimizer.ts';
export { saveCheckpoint, loadCheckpoint, encodeCheckpoint, decodeCheckpoint, type Checkpoint } from './checkpoint.ts';
export { evaluate, type Evaluation } from './evaluate.ts';
export { Trainer, RunPlan, architectureOf, type TrainConfig, type StepReport } from './trainer.ts';
export {
  RUN_OPTIONS,
  resolveRun,
  runFlags,
  readRunSettings,
  checkSettings,
  runConfigOf,
  type RunConfig,
  type RunSettings,
  type RunOptionName,
} from './run-config.ts';
export { TINY, toyConfig, toyDomain } from './testing/toy.ts';
export { dannGradientErrors } from './testing/parity.ts';
