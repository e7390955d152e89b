import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  applyUpdate,
  createOptimizerState,
  DannNetwork,
  loadCheckpoint,
  paramSpecs,
  RunPlan,
  saveCheckpoint,
  architectureOf,
  type Checkpoint,
  type OptimizerState,
  type RunConfig,
  type RunSettings,
  type TrainConfig,
} from '@dann/training';
import { decodeFrame, encodeFrame, weightChecksum, type Frame, type Hello } from '@dann/protocol';
import { Hub, type HubPolicy, type Peer, type Removed, type RoundResult } from './hub.ts';

export interface CoordinatorOptions extends HubPolicy {
  /** The run; trainers get its settings and build the same config from them. */
  readonly run: RunConfig;
  readonly settings: RunSettings;
  /** Training-set sizes (source without the validation hold-out), which fix the epoch permutations. */
  readonly counts: { source: number; target: number };
  /** Weights of a fresh run (a warm start); seeded initial weights when absent. */
  readonly initialWeights?: Float32Array;
  readonly out: string;
  readonly resume: boolean;
  /** Called once the last step's update went out and the final checkpoint is written. */
  readonly onDone: () => void;
  /**
   * Called after every applied step, its update applied (metrics.jsonl, the per-epoch evaluation). A promise
   * holds the next step until it settles; its rejection goes to `onError`.
   */
  readonly onStep?: (m: StepMetrics) => void | Promise<void>;
  /** A failure of `onStep`'s work (the run cannot go on); without it, an unhandled rejection. */
  readonly onError?: (err: unknown) => void;
}

export interface StepMetrics {
  step: number;
  epoch: number;
  /** Source samples in the step's average. */
  samples: number;
  labelLoss: number;
  domainLoss: number;
  labelAcc: number;
  domainAcc: number;
  lambda: number;
  lr: number;
  trainers: number;
  stepMs: number;
  computeMs: number;
  /** Coordinator time to average and encode the update and hand it to the trainers (its own replica's update comes after). */
  reduceMs: number;
  /** L2 norm of the averaged gradient before clipping. */
  gradNorm: number;
  /** Trainers whose gradient was an outlier (its shard recomputed by the others). */
  outliers: number;
  /** Recomputed shard gradients that were still outliers, scaled down by the aggregation. */
  clipped: number;
}

/**
 * The coordinator's run state and step loop, over abstract peers (serve.ts wires them to WebSockets).
 * It owns config, step, epoch order and accounting; its Hub splits each step over the connected trainers
 * and combines their gradients; it applies the average to its own replica (for joiners and checkpoints)
 * and sends it to every trainer (or relay), which applies the same update; it checkpoints atomically.
 */
export class Coordinator {
  readonly paramCount: number;
  /** Batches, schedules and dropout seeds per step: the same plan a single-process Trainer follows. */
  readonly plan: RunPlan;
  weights: Float32Array;
  optimizer: OptimizerState;
  step = 0;
  readonly metrics: StepMetrics[] = [];
  /** Per epoch: how many times each source index went into an applied average. */
  readonly usage = new Map<number, Uint8Array>();
  private readonly hub: Hub;
  private lastCheckpoint = Date.now();
  private checkpointRetry: NodeJS.Timeout | null = null;
  done = false;

  constructor(readonly o: CoordinatorOptions) {
    const c = o.run.train;
    this.paramCount = paramSpecs(architectureOf(c)).reduce((n, s) => n + s.size, 0);
    this.plan = new RunPlan(c, o.counts.source, o.counts.target);
    const file = join(o.out, 'checkpoint.bin');
    if (o.resume) {
      if (!existsSync(file)) throw new Error(`--resume: ${file} does not exist.`);
      const ck = loadCheckpoint<TrainConfig>(file);
      if (ck.weights.length !== this.paramCount)
        throw new Error(`--resume: ${file} holds ${ck.weights.length} weights, this run's network ${this.paramCount}.`);
      this.weights = Float32Array.from(ck.weights);
      this.optimizer = ck.optimizer.state;
      this.step = ck.step;
      for (const [epoch, counts] of Object.entries((ck.extra?.usage ?? {}) as Record<string, string>)) {
        this.usage.set(Number(epoch), new Uint8Array(Buffer.from(counts, 'base64')));
      }
      o.log(`resumed from ${file} at step ${ck.step}`);
    } else {
      this.weights = o.initialWeights
        ? Float32Array.from(o.initialWeights)
        : DannNetwork.initialWeights(architectureOf(c), c.seed);
      if (this.weights.length !== this.paramCount)
        throw new Error(
          `the initial weights hold ${this.weights.length} values, this run's network ${this.paramCount}.`,
        );
      this.optimizer = createOptimizerState(c.optimizer, this.weights);
      this.checkpoint(); // so --resume works from the first moment on
    }
    this.hub = new Hub({
      ...o,
      paramCount: this.paramCount,
      replica: {
        state: () => ({ step: this.step, epoch: this.epoch, weights: this.weights, optimizer: this.optimizer }),
        checksum: () => weightChecksum(this.weights),
      },
      onJoin: () => this.maybeStartStep(),
      onRound: (r) => this.finishStep(r),
    });
  }

  get totalSteps(): number {
    return this.plan.totalSteps;
  }

  get epoch(): number {
    return this.plan.epochOf(this.step);
  }

  get liveIds(): number[] {
    return this.hub.liveIds;
  }

  /** Trainers dropped for what they sent, newest last (bounded). */
  get removed(): readonly Removed[] {
    return this.hub.removed;
  }

  trainers(): ReturnType<Hub['trainers']> {
    return this.hub.trainers();
  }

  /** A connected trainer's name as logs show it, or `#id` once it is gone. */
  nameOf(id: number): string {
    return this.hub.nameOf(id);
  }

  /** A trainer said hello: welcome it, send the current state; it takes part from the next step. */
  join(hello: Hello, peer: Peer): number | null {
    return this.hub.join(hello, peer);
  }

  /** A trainer disconnected or was dropped: re-plan its unanswered shards over the others. */
  leave(id: number, reason: string): void {
    this.hub.leave(id, reason);
  }

  /** A decoded frame from trainer `id`. Returns an error sentence for frames that are refused. */
  receive(id: number, frame: Frame): string | null {
    return this.hub.receive(id, frame);
  }

  maybeStartStep(): void {
    if (this.done || this.hub.busy) {
      this.hub.ready(); // gives an orphaned round's shards to whoever is here
      return;
    }
    if (this.step >= this.totalSteps) return void this.finish();
    if (!this.hub.ready()) return;
    const b = this.plan.batchAt(this.step);
    const { lambda } = this.plan.schedule(this.step);
    this.hub.start({
      step: this.step,
      epoch: this.epoch,
      source: b.source,
      target: b.target,
      lambda,
      seed: this.plan.seed(this.step),
    });
  }

  private finishStep(r: RoundResult): void {
    const sendStart = performance.now();
    const { lambda, lr } = this.plan.schedule(this.step);
    const update = encodeFrame(
      { type: 'update', step: this.step, samples: r.samples, lr, trainers: this.hub.size },
      r.gradient,
      this.o.wireDtype,
    );
    // The trainers first: the coordinator's own replica update runs while they receive and apply theirs.
    this.hub.broadcast(update);
    const reduceMs = r.averageMs + performance.now() - sendStart;
    // Apply exactly what the trainers will decode (bf16/f16 round the average), so replicas stay identical.
    const applied =
      this.o.wireDtype === 'f32' ? r.gradient : decodeFrame(update, { maxPayload: this.paramCount }).payload!;
    const info = applyUpdate(this.weights, applied, this.optimizer, this.o.run.train.optimizer, lr);
    const epoch = this.epoch;
    const used = this.usage.get(epoch) ?? new Uint8Array(this.o.counts.source);
    for (const i of r.usedSource) used[i]++;
    this.usage.set(epoch, used);
    this.metrics.push({
      step: this.step,
      epoch,
      samples: r.samples,
      labelLoss: r.labelLoss,
      domainLoss: r.domainLoss,
      labelAcc: r.labelAcc,
      domainAcc: r.domainAcc,
      lambda,
      lr,
      trainers: r.shards,
      stepMs: r.roundMs + performance.now() - sendStart,
      computeMs: r.computeMs,
      reduceMs,
      gradNorm: info.gradNorm,
      outliers: r.outliers,
      clipped: r.clipped,
    });
    if (this.metrics.length > 2000) this.metrics.splice(0, this.metrics.length - 2000);
    this.step++;
    const { every, seconds } = this.o.run.checkpoint;
    const due = seconds > 0 && Date.now() - this.lastCheckpoint >= seconds * 1000;
    if (this.step % every === 0 || this.step % this.plan.stepsPerEpoch === 0 || due) this.checkpoint();
    // After the update and the checkpoint: `this.step` and the weights are those after this step.
    const next = () => setImmediate(() => this.maybeStartStep());
    const after = this.o.onStep?.(this.metrics[this.metrics.length - 1]);
    const fail = this.o.onError ?? ((err: unknown) => Promise.reject(err)); // unhandled without onError: the process stops
    if (after) after.then(next, fail);
    else next();
  }

  /** Writes checkpoint.bin atomically (weights, optimizer, accounting); a failed write is retried every 2 s. */
  checkpoint(): boolean {
    if (this.checkpointRetry) clearTimeout(this.checkpointRetry);
    this.checkpointRetry = null;
    const file = join(this.o.out, 'checkpoint.bin');
    try {
      saveCheckpoint(file, this.snapshot());
      this.lastCheckpoint = Date.now();
      return true;
    } catch (err) {
      this.o.log(
        `could not write ${file} at step ${this.step} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the previous checkpoint is intact; retrying in 2 s`,
      );
      this.checkpointRetry = setTimeout(() => this.checkpoint(), 2000);
      return false;
    }
  }

  /** The run's state as a checkpoint: weights, optimizer, position, settings and accounting. */
  snapshot(): Checkpoint<TrainConfig> {
    const usage = Object.fromEntries(
      [...this.usage].map(([epoch, counts]) => [epoch, Buffer.from(counts).toString('base64')]),
    );
    return {
      arch: architectureOf(this.o.run.train).name,
      step: this.step,
      epoch: this.epoch,
      config: this.o.run.train,
      weights: this.weights,
      optimizer: { kind: this.o.run.train.optimizer.kind, state: this.optimizer },
      extra: { settings: this.o.settings, usage },
    };
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.hub.finish();
    // The final checkpoint is the run's result: wait until it is written.
    const settle = (attempt: number) => {
      if (this.checkpoint()) {
        this.o.log(`finished ${this.totalSteps} steps; ${join(this.o.out, 'checkpoint.bin')}`);
        return this.o.onDone();
      }
      if (this.checkpointRetry) clearTimeout(this.checkpointRetry);
      if (attempt < 30) return void setTimeout(() => settle(attempt + 1), 2000);
      this.o.log(`gave up writing the final checkpoint after ${attempt} attempts; the results below come from memory`);
      this.o.onDone();
    };
    settle(1);
  }

  /** Stops the step deadline and any checkpoint retry (a run abandoned after an error). */
  close(): void {
    this.done = true;
    this.hub.close();
    if (this.checkpointRetry) clearTimeout(this.checkpointRetry);
  }

  /** True when every source sample of each finished epoch went into exactly one applied average. */
  epochsExactlyOnce(): Record<number, { once: number; never: number; more: number }> {
    const out: Record<number, { once: number; never: number; more: number }> = {};
    for (const [epoch, used] of this.usage) {
      let once = 0,
        never = 0,
        more = 0;
      for (const u of used) u === 1 ? once++ : u === 0 ? never++ : more++;
      out[epoch] = { once, never, more };
    }
    return out;
  }
}
