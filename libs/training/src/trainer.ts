import {
  AUGMENTATIONS,
  pairedBatches,
  preprocessBatch,
  INPUT_SIZE,
  mixSeed,
  type AugmentationName,
  type ImageSet,
  type PairedBatch,
} from '@dann/data';
import { PRESETS, type Architecture, type Group, type PresetName } from './architecture.ts';
import { DannNetwork } from './network.ts';
import {
  applyUpdate,
  createOptimizerState,
  headOfState,
  type OptimizerConfig,
  type OptimizerState,
  type UpdateInfo,
} from './optimizer.ts';
import { lambdaSchedule, lrSchedule, progress } from './schedules.ts';
import { computeGradient, type StepResult } from './step.ts';
import { objectivesOf, type MeanTeacherWeights, type Method, type Objective } from './objectives/index.ts';
import type { Checkpoint } from './checkpoint.ts';

/** Everything that determines a training run; stored in its checkpoints. */
export interface TrainConfig {
  readonly preset: PresetName;
  /** Overrides the preset (tests use tiny networks). */
  readonly architecture?: Architecture;
  readonly method: Method;
  readonly epochs: number;
  /** Source images per step (DANN adds as many target images). */
  readonly batchSize: number;
  readonly optimizer: OptimizerConfig;
  /** Initial learning rate lr0. */
  readonly lr: number;
  /** 'paper': lr0 / (1 + 10p)^0.75; 'constant': lr0. */
  readonly lrSchedule: 'paper' | 'constant';
  /** Ceiling of the GRL weight schedule. */
  readonly lambdaMax: number;
  /** Steepness of the GRL weight schedule (10 in the paper). */
  readonly lambdaGamma: number;
  readonly domainWeight: number;
  /** Weight of the information-maximisation term (shot). */
  readonly infoMax?: number;
  /** Random changes of every training image (source and target), drawn per (step, sample). */
  readonly augment?: AugmentationName;
  /** mean-teacher: its terms' weights (the teacher's decay is `optimizer.ema`). */
  readonly meanTeacher?: MeanTeacherWeights;
  /** Weight of the target prediction entropy; 0 when absent. */
  readonly targetEntropy?: number;
  /** Seeds initialisation, data order and dropout. */
  readonly seed: number;
  /** Parameter groups left unchanged (e.g. features after a warm start). */
  readonly frozen?: readonly Group[];
}

export interface StepReport extends StepResult, UpdateInfo {
  readonly step: number;
  readonly epoch: number;
  readonly lambda: number;
  readonly lr: number;
}

export function architectureOf(config: TrainConfig): Architecture {
  return config.architecture ?? PRESETS[config.preset];
}

/**
 * What a run does at each step, as pure functions of (config, training-set sizes, step): the source
 * and target indices, the schedules and the dropout seed. The single-process Trainer and the
 * distributed coordinator both plan with it, so a step means the same thing in both.
 */
export class RunPlan {
  readonly stepsPerEpoch: number;
  readonly totalSteps: number;
  private epochBatches: { epoch: number; batches: PairedBatch[] } | null = null;

  constructor(
    readonly config: TrainConfig,
    readonly sourceCount: number,
    readonly targetCount: number,
  ) {
    this.stepsPerEpoch = Math.ceil(sourceCount / config.batchSize);
    this.totalSteps = this.stepsPerEpoch * config.epochs;
  }

  epochOf(step: number): number {
    return Math.floor(step / this.stepsPerEpoch);
  }

  /** The source and target indices of a step (each epoch's batches are built once). */
  batchAt(step: number): PairedBatch {
    const epoch = this.epochOf(step);
    if (this.epochBatches?.epoch !== epoch) {
      const batches = [
        ...pairedBatches({
          sourceCount: this.sourceCount,
          targetCount: this.targetCount,
          batchSize: this.config.batchSize,
          seed: this.config.seed,
          epoch,
        }),
      ];
      this.epochBatches = { epoch, batches };
    }
    return this.epochBatches.batches[step % this.stepsPerEpoch];
  }

  schedule(step: number): { lambda: number; lr: number; p: number } {
    const c = this.config;
    const p = progress(step, this.totalSteps);
    return {
      p,
      lambda: c.method === 'dann' ? lambdaSchedule(p, c.lambdaMax, c.lambdaGamma) : 0,
      lr: c.lrSchedule === 'paper' ? lrSchedule(p, c.lr) : c.lr,
    };
  }

  /** Seed of a step's dropout masks. */
  seed(step: number): number {
    return mixSeed(this.config.seed, 0xd20, step);
  }
}

/**
 * Single-process training on top of the two primitives the distributed run uses:
 * `computeGradient` (batch -> flat gradient) and `applyUpdate` (flat gradient -> weights).
 * Data order, dropout masks and schedules depend only on (config, step), so a run resumed
 * from a checkpoint takes exactly the steps it would have taken without stopping.
 */
export class Trainer {
  readonly net: DannNetwork;
  readonly weights: Float32Array;
  readonly optimizer: OptimizerState;
  readonly plan: RunPlan;
  step: number;
  private readonly sourceBuffer: Float32Array;
  private readonly targetBuffer: Float32Array;
  /** The loss terms the config names, and which rows of a batch they read. */
  readonly objectives: readonly Objective[];
  private readonly readsSource: boolean;
  private readonly readsTarget: boolean;
  /** The mean teacher (the weights' moving average) when a term reads its predictions, and the step it holds. */
  private readonly teacher: { net: DannNetwork; step: number } | null;
  /** Parameters an update touches: without a domain term the domain head (the layout's tail) stays alone. */
  private readonly updated: number;

  constructor(
    readonly config: TrainConfig,
    readonly source: ImageSet,
    readonly target: ImageSet,
    init?: { weights: Float32Array; optimizer?: OptimizerState; step?: number },
  ) {
    const arch = architectureOf(config);
    this.weights = init ? Float32Array.from(init.weights) : DannNetwork.initialWeights(arch, config.seed);
    this.net = new DannNetwork(arch, this.weights);
    this.optimizer = init?.optimizer
      ? {
          step: init.optimizer.step,
          m: Float32Array.from(init.optimizer.m),
          v: Float32Array.from(init.optimizer.v),
          ema: Float32Array.from(init.optimizer.ema),
        }
      : createOptimizerState(config.optimizer, this.weights);
    this.step = init?.step ?? 0;
    this.plan = new RunPlan(config, source.count, target.count);
    this.objectives = objectivesOf(config);
    this.readsSource = this.objectives.some((t) => t.needsSource);
    this.readsTarget = this.objectives.some((t) => t.needsTarget);
    this.teacher = null;
    if (this.objectives.some((t) => t.needsTeacher)) {
      if (!this.optimizer.ema.length)
        throw new Error(`${config.method} needs the weights' moving average: set optimizer.ema.`);
      this.teacher = { net: new DannNetwork(arch, this.optimizer.ema), step: this.step };
    }
    this.updated = this.objectives.some((t) => t.groups.includes('domain'))
      ? this.net.size
      : this.net.specs.filter((s) => s.group !== 'domain').reduce((a, s) => a + s.size, 0);
    this.sourceBuffer = new Float32Array(config.batchSize * INPUT_SIZE);
    this.targetBuffer = new Float32Array(config.batchSize * INPUT_SIZE);
  }

  static fromCheckpoint(c: Checkpoint<TrainConfig>, source: ImageSet, target: ImageSet): Trainer {
    return new Trainer(c.config, source, target, { weights: c.weights, optimizer: c.optimizer.state, step: c.step });
  }

  get stepsPerEpoch(): number {
    return this.plan.stepsPerEpoch;
  }

  get totalSteps(): number {
    return this.plan.totalSteps;
  }

  get epoch(): number {
    return this.plan.epochOf(this.step);
  }

  get done(): boolean {
    return this.step >= this.totalSteps;
  }

  /** Schedules at a given step. */
  schedule(step = this.step): { lambda: number; lr: number; p: number } {
    return this.plan.schedule(step);
  }

  /** The source and target indices of a step (a pure function of config and step). */
  batchAt(step: number): PairedBatch {
    return this.plan.batchAt(step);
  }

  /** Loss parts and flat gradient of the current step's batch; weights unchanged. */
  async gradient(): Promise<StepResult & { lambda: number; lr: number }> {
    const b = this.batchAt(this.step);
    const { lambda, lr } = this.schedule();
    return { ...(await this.gradientFor(b.source, b.target, lambda, this.plan.seed(this.step))), lambda, lr };
  }

  /**
   * Loss parts and flat gradient of any source/target indices (a distributed trainer's shard; at most
   * batchSize of each). Each sample's dropout masks come from its index, so a sharded batch gets the masks
   * the whole batch would: one rule for one process and many. Frozen groups get a zero gradient.
   */
  async gradientFor(
    sourceIdx: ArrayLike<number>,
    targetIdx: ArrayLike<number>,
    lambda: number,
    seed: number,
  ): Promise<StepResult> {
    const n = sourceIdx.length;
    // Each image's augmentation is drawn from (step seed, domain, index), like its dropout masks.
    const augment = (domain: number) =>
      this.config.augment
        ? { augmentation: AUGMENTATIONS[this.config.augment], seed: mixSeed(seed, 0xa06, domain) }
        : undefined;
    const source = this.readsSource
      ? preprocessBatch(this.source, sourceIdx, this.sourceBuffer.subarray(0, n * INPUT_SIZE), augment(0))
      : new Float32Array(0);
    const target = this.readsTarget
      ? preprocessBatch(
          this.target,
          targetIdx,
          this.targetBuffer.subarray(0, targetIdx.length * INPUT_SIZE),
          augment(1),
        )
      : undefined;
    const sourceLabels = Uint8Array.from(sourceIdx, (i) => this.source.labels[i]);
    const result = await computeGradient(
      this.net,
      {
        source,
        sourceLabels,
        target,
        ids: { source: sourceIdx, target: targetIdx },
        teacherProbs: await this.teacherProbs(targetIdx, augment(2)),
      },
      { objectives: this.objectives, lambda, seed },
    );
    for (const spec of this.net.specs) {
      if (this.config.frozen?.includes(spec.group)) result.gradient.fill(0, spec.offset, spec.offset + spec.size);
    }
    return result;
  }

  /** The mean teacher's predictions on its own augmentation of the target images (undefined without a teacher). */
  private async teacherProbs(
    targetIdx: ArrayLike<number>,
    augment: Parameters<typeof preprocessBatch>[3],
  ): Promise<Float32Array | undefined> {
    const t = this.teacher;
    if (!t) return undefined;
    if (t.step !== this.step) {
      t.net.setWeights(this.optimizer.ema);
      t.step = this.step;
    }
    return t.net.predict(preprocessBatch(this.target, targetIdx, undefined, augment)); // the student's view stays intact
  }

  /** Applies a (possibly averaged) gradient with the current step's learning rate and advances. */
  apply(gradient: Float32Array, lr = this.schedule().lr): UpdateInfo {
    // Without a domain term the domain head never gets a gradient and its optimizer moments start at zero, so
    // its update is exactly zero: skip it.
    const n = this.updated;
    const o = this.optimizer;
    const state = n === this.net.size ? o : headOfState(o, n);
    const info = applyUpdate(this.weights.subarray(0, n), gradient.subarray(0, n), state, this.config.optimizer, lr);
    o.step = state.step;
    this.net.setWeights(this.weights);
    this.step++;
    return info;
  }

  /** One whole training step: gradient of the local batch, then apply it. */
  async trainStep(): Promise<StepReport> {
    const step = this.step;
    const epoch = this.epoch;
    const g = await this.gradient();
    const info = this.apply(g.gradient, g.lr);
    return { ...g, ...info, step, epoch };
  }

  checkpoint(extra?: Record<string, unknown>): Checkpoint<TrainConfig> {
    return {
      arch: architectureOf(this.config).name,
      step: this.step,
      epoch: this.epoch,
      config: this.config,
      extra,
      weights: this.weights,
      optimizer: { kind: this.config.optimizer.kind, state: this.optimizer },
    };
  }

  dispose(): void {
    this.net.dispose();
    this.teacher?.net.dispose();
  }
}
