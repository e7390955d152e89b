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
import {
  decodeFrame,
  encodeFrame,
  PROTOCOL_VERSION,
  weightChecksum,
  type Frame,
  type Hello,
  type Message,
  type WireDtype,
} from '@dann/protocol';
import { StepRound, type Shard } from './round.ts';
import type { Aggregate } from './aggregate.ts';

export interface CoordinatorOptions {
  /** The run; trainers get its settings and build the same config from them. */
  readonly run: RunConfig;
  readonly settings: RunSettings;
  /** Trainers send a weight checksum after every update whose step number is a multiple of this. */
  readonly checksumEvery: number;
  /** Training-set sizes (source without the validation hold-out), which fix the epoch permutations. */
  readonly counts: { source: number; target: number };
  /** Weights of a fresh run (a warm start); seeded initial weights when absent. */
  readonly initialWeights?: Float32Array;
  readonly minTrainers: number;
  readonly stepTimeoutMs: number;
  /** How shard gradients are combined (aggregate.ts) and the clipped-mean's bound (x the median norm). */
  readonly aggregate: Aggregate;
  readonly clipFactor: number;
  /** A trainer whose gradient is an outlier (see recomputeOutliers) in this many consecutive steps is dropped (0 = never). */
  readonly maxOutlierSteps: number;
  /** At most one resync (full state) per trainer within this many ms. */
  readonly resyncIntervalMs: number;
  readonly wireDtype: WireDtype;
  readonly out: string;
  readonly resume: boolean;
  readonly log: (line: string) => void;
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

/** A connected trainer, seen through the two things the coordinator does with it. */
export interface Peer {
  send(bytes: Uint8Array): void;
  close(code: number, reason: string): void;
}

interface Member {
  readonly id: number;
  /** The trainer's name, made unique among connected trainers: the one identity logs and the status page use. */
  readonly label: string;
  readonly hello: Hello;
  readonly peer: Peer;
  readonly joinedAt: number;
  steps: number;
  computeMs: number;
  lastSeen: number;
  /** Consecutive steps in which this trainer's gradient was an outlier. */
  outlierRun: number;
  lastResync: number;
}

/** A trainer the coordinator dropped for what it sent (named on the status page). */
export interface Removed {
  readonly id: number;
  readonly name: string;
  readonly step: number;
  readonly reason: string;
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
 * It owns config, step, epoch order and membership; averages gradients (StepRound); applies the
 * average to its own replica (for joiners and checkpoints) and sends it to every trainer, which
 * applies the same update; checkpoints atomically; re-plans around trainers that leave or stall.
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
  private readonly members = new Map<number, Member>();
  private nextId = 1;
  private round: StepRound | null = null;
  private roundStarted = 0;
  private deadline: NodeJS.Timeout | null = null;
  private waitingSaid = -1;
  /** Trainers dropped for what they sent, newest last (bounded). */
  readonly removed: Removed[] = [];
  private stateCache: { step: number; frame: Uint8Array } | null = null;
  private lastCheckpoint = Date.now();
  private checkpointRetry: NodeJS.Timeout | null = null;
  /** Per answered shard of the current step: its losses and compute time (for the step's metrics). */
  private readonly partial = new Map<
    number,
    { samples: number; labelLoss: number; domainLoss: number; labelAcc: number; domainAcc: number; computeMs: number }
  >();
  /** Trainers whose gradient was an outlier in the current step. */
  private readonly outlierTrainers = new Set<number>();
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
  }

  get totalSteps(): number {
    return this.plan.totalSteps;
  }

  get epoch(): number {
    return this.plan.epochOf(this.step);
  }

  get liveIds(): number[] {
    return [...this.members.keys()].sort((a, b) => a - b);
  }

  trainers(): {
    id: number;
    name: string;
    backend: string;
    device: string;
    steps: number;
    msPerStep: number;
    outlierRun: number;
  }[] {
    return this.liveIds.map((id) => {
      const m = this.members.get(id)!;
      return {
        id,
        name: m.label,
        backend: m.hello.backend,
        device: m.hello.device,
        steps: m.steps,
        msPerStep: m.steps ? m.computeMs / m.steps : NaN,
        outlierRun: m.outlierRun,
      };
    });
  }

  /** A connected trainer's name as logs show it, or `#id` once it is gone. */
  nameOf(id: number): string {
    return this.members.get(id)?.label ?? `#${id}`;
  }

  private sendTo(m: Member, message: Message, payload?: Float32Array): void {
    m.peer.send(encodeFrame(message, payload, this.o.wireDtype));
  }

  /** The full state as one frame, built once per step and shared by every peer that needs it. */
  private stateFrame(): Uint8Array {
    if (this.stateCache?.step === this.step) return this.stateCache.frame;
    const { weights, optimizer } = this;
    const parts = [weights, optimizer.m, optimizer.v, optimizer.ema];
    const payload = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      payload.set(p, at);
      at += p.length;
    }
    // State is always exact (f32): replicas must start bit-identical.
    const frame = encodeFrame(
      {
        type: 'state',
        step: this.step,
        epoch: this.epoch,
        optimizerStep: optimizer.step,
        sizes: parts.map((p) => p.length),
      },
      payload,
      'f32',
    );
    this.stateCache = { step: this.step, frame };
    return frame;
  }

  /** A trainer said hello: welcome it, send the current state; it takes part from the next step. */
  join(hello: Hello, peer: Peer): number | null {
    if (hello.protocol !== PROTOCOL_VERSION) {
      peer.send(
        encodeFrame({
          type: 'error',
          code: 'protocol-version',
          message: `this coordinator speaks protocol ${PROTOCOL_VERSION}, the trainer ${hello.protocol}; run the same version of the project on both.`,
        }),
      );
      peer.close(1008, 'protocol version');
      return null;
    }
    if (this.done) {
      peer.send(encodeFrame({ type: 'leave', code: 'finished' }));
      peer.close(1000, 'done');
      return null;
    }
    const id = this.nextId++;
    const taken = new Set([...this.members.values()].map((x) => x.label));
    const label = taken.has(hello.name) ? `${hello.name}#${id}` : hello.name;
    const now = Date.now();
    const m: Member = {
      id,
      label,
      hello,
      peer,
      joinedAt: this.step,
      steps: 0,
      computeMs: 0,
      lastSeen: now,
      outlierRun: 0,
      lastResync: now,
    };
    this.members.set(id, m);
    this.sendTo(m, {
      type: 'welcome',
      trainerId: id,
      settings: this.o.settings,
      checksumEvery: this.o.checksumEvery,
      paramCount: this.paramCount,
      wireDtype: this.o.wireDtype,
    });
    peer.send(this.stateFrame());
    this.o.log(
      `trainer ${label} joined (${hello.backend} on ${hello.device}) at step ${this.step}; ${this.members.size} connected`,
    );
    this.maybeStartStep();
    return id;
  }

  /** A trainer disconnected or was dropped: re-plan its unanswered shards over the others. */
  leave(id: number, reason: string): void {
    const m = this.members.get(id);
    if (!m) return;
    this.members.delete(id);
    this.o.log(`trainer ${m.label} left (${reason}); ${this.members.size} connected`);
    if (this.round && !this.done) {
      if (this.members.size === 0) return; // the round waits; shards are re-planned when someone joins
      for (const s of this.round.drop(id, this.liveIds)) this.assign(s);
    }
  }

  private assign(s: Shard): void {
    const m = this.members.get(s.trainer)!;
    this.sendTo(m, {
      type: 'assign',
      step: this.step,
      shard: s.id,
      epoch: this.epoch,
      source: [...s.source],
      target: [...s.target],
      lambda: this.plan.schedule(this.step).lambda,
      seed: this.plan.seed(this.step),
    });
  }

  maybeStartStep(): void {
    if (this.done || this.round) {
      // A round orphaned by everyone leaving gets its shards back once a trainer is here.
      if (this.round && this.members.size > 0)
        for (const s of this.round.pending)
          if (!this.members.has(s.trainer)) for (const n of this.round.drop(s.trainer, this.liveIds)) this.assign(n);
      return;
    }
    if (this.step >= this.totalSteps) {
      this.finish();
      return;
    }
    if (this.members.size < this.o.minTrainers) {
      if (this.waitingSaid !== this.members.size) {
        this.waitingSaid = this.members.size;
        const msg = `waiting for trainers: ${this.members.size} of at least ${this.o.minTrainers} connected`;
        this.o.log(msg);
        for (const m of this.members.values()) this.sendTo(m, { type: 'wait', message: msg });
      }
      return;
    }
    this.waitingSaid = -1;
    const b = this.plan.batchAt(this.step);
    this.round = new StepRound(this.step, b.source, b.target, this.liveIds, this.paramCount);
    this.partial.clear();
    this.outlierTrainers.clear();
    this.roundStarted = performance.now();
    for (const s of this.round.pending) this.assign(s);
    this.armDeadline();
  }

  private armDeadline(): void {
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = setTimeout(() => {
      if (!this.round) return;
      const late = [...new Set(this.round.pending.map((s) => s.trainer))];
      for (const id of late) {
        this.members.get(id)?.peer.close(4000, 'missed the step deadline');
        this.leave(id, `missed the ${this.o.stepTimeoutMs} ms step deadline`);
      }
      this.armDeadline();
    }, this.o.stepTimeoutMs);
  }

  /** A decoded frame from trainer `id`. Returns an error sentence for frames that are refused. */
  receive(id: number, frame: Frame): string | null {
    const m = this.members.get(id);
    if (!m) return 'unknown trainer.';
    m.lastSeen = Date.now();
    const msg = frame.message;
    switch (msg.type) {
      case 'gradient': {
        if (!this.round || msg.step !== this.round.step)
          return `gradient for step ${msg.step}, but the current step is ${this.round?.step ?? 'none'}.`;
        const why = this.round.receive(msg.shard, id, msg.samples, frame.payload!);
        if (why) return why;
        m.steps++;
        m.computeMs += msg.computeMs;
        this.partial.set(msg.shard, {
          samples: msg.samples,
          labelLoss: msg.labelLoss,
          domainLoss: msg.domainLoss,
          labelAcc: msg.labelAcc,
          domainAcc: msg.domainAcc,
          computeMs: msg.computeMs,
        });
        if (this.round.complete && !this.recomputeOutliers(this.round)) this.finishStep();
        return null;
      }
      case 'checksum': {
        if (msg.step !== this.step) return null; // a late checksum; the next one will tell
        if (msg.value !== weightChecksum(this.weights)) {
          const now = Date.now();
          if (now - m.lastResync < this.o.resyncIntervalMs)
            return `weights differ after step ${msg.step}; the last resync was ${now - m.lastResync} ms ago.`;
          m.lastResync = now;
          this.o.log(`trainer ${m.label}'s weights differ from the coordinator's after step ${msg.step}: resyncing it`);
          m.peer.send(this.stateFrame());
        }
        return null;
      }
      case 'leave':
        m.peer.close(1000, 'bye');
        this.leave(id, `left: ${msg.code}`);
        return null;
      default:
        return `a trainer does not send ${msg.type} messages.`;
    }
  }

  private finishStep(): void {
    const round = this.round!;
    if (this.deadline) clearTimeout(this.deadline);
    const reduceStart = performance.now();
    const { gradient, samples, clipped } = round.average(this.o.aggregate, this.o.clipFactor);
    for (const c of clipped)
      this.o.log(
        `step ${this.step}: trainer ${this.nameOf(c.trainer)}'s recomputed gradient norm ${c.norm.toExponential(2)} is still over ${this.o.clipFactor} x the median; scaled to ${c.bound.toExponential(2)}`,
      );
    for (const id of round.contributors()) {
      const m = this.members.get(id); // a contributor may have left since it answered
      if (m && !this.outlierTrainers.has(id)) m.outlierRun = 0;
    }
    const { lambda, lr } = this.plan.schedule(this.step);
    const update = encodeFrame(
      { type: 'update', step: this.step, samples, lr, trainers: this.members.size },
      gradient,
      this.o.wireDtype,
    );
    // The trainers first: the coordinator's own replica update runs while they receive and apply theirs.
    for (const m of this.members.values()) m.peer.send(update);
    const reduceMs = performance.now() - reduceStart;
    // Apply exactly what the trainers will decode (bf16/f16 round the average), so replicas stay identical.
    const applied =
      this.o.wireDtype === 'f32' ? gradient : decodeFrame(update, { maxPayload: this.paramCount }).payload!;
    const info = applyUpdate(this.weights, applied, this.optimizer, this.o.run.train.optimizer, lr);
    const epoch = this.epoch;
    const used = this.usage.get(epoch) ?? new Uint8Array(this.o.counts.source);
    for (const i of round.usedSource()) used[i]++;
    this.usage.set(epoch, used);
    const parts = [...this.partial.values()];
    const w = (k: 'labelLoss' | 'domainLoss' | 'labelAcc' | 'domainAcc') =>
      parts.reduce((a, p) => a + p[k] * p.samples, 0) / samples;
    this.metrics.push({
      step: this.step,
      epoch,
      samples,
      labelLoss: w('labelLoss'),
      domainLoss: w('domainLoss'),
      labelAcc: w('labelAcc'),
      domainAcc: w('domainAcc'),
      lambda,
      lr,
      trainers: parts.length,
      stepMs: performance.now() - this.roundStarted,
      computeMs: Math.max(...parts.map((p) => p.computeMs)),
      reduceMs,
      gradNorm: info.gradNorm,
      outliers: this.outlierTrainers.size,
      clipped: clipped.length,
    });
    if (this.metrics.length > 2000) this.metrics.splice(0, this.metrics.length - 2000);
    this.round = null;
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

  /**
   * A complete round whose answers include outliers (a gradient norm over `clipFactor` x the step's
   * median): unless the rule is `mean`, each outlier is discarded and its samples are recomputed by the
   * other trainers, once (a recomputed shard that is still an outlier is honest, and is clipped). Norm
   * clipping alone is not enough under Adam, which scales each coordinate by its own history: a small
   * poisoned vector still moves coordinates the honest gradients leave alone. A trainer whose gradient
   * is an outlier in `maxOutlierSteps` consecutive steps is dropped and listed in `removed`. Returns
   * true when the step waits for recomputed shards.
   */
  private recomputeOutliers(round: StepRound): boolean {
    if (this.o.aggregate === 'mean') return false;
    const outliers = round.outliers(this.o.clipFactor);
    const suspects = new Set(outliers.map((o) => o.trainer));
    const others = this.liveIds.filter((id) => !suspects.has(id));
    if (outliers.length === 0 || others.length === 0) return false; // nobody else to ask: the aggregate bounds it
    for (const o of outliers) {
      this.o.log(
        `step ${this.step}: trainer ${this.nameOf(o.trainer)}'s gradient norm ${o.norm.toExponential(2)} is over ${this.o.clipFactor} x the median ${o.median.toExponential(2)}; the others recompute its shard`,
      );
      this.partial.delete(o.shard);
      for (const shard of round.reject(o.shard, others)) this.assign(shard);
    }
    this.armDeadline();
    for (const id of suspects) {
      this.outlierTrainers.add(id);
      const m = this.members.get(id);
      if (!m) continue;
      m.outlierRun++;
      if (this.o.maxOutlierSteps > 0 && m.outlierRun >= this.o.maxOutlierSteps) {
        const reason = `gradient norm an outlier in ${m.outlierRun} consecutive steps`;
        this.removed.push({ id, name: m.label, step: this.step, reason });
        if (this.removed.length > 100) this.removed.shift();
        m.peer.close(4001, 'gradient an outlier too often');
        this.leave(id, `dropped: ${reason}`);
      }
    }
    return true;
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
    if (this.deadline) clearTimeout(this.deadline);
    for (const m of this.members.values()) {
      this.sendTo(m, { type: 'leave', code: 'finished' });
      m.peer.close(1000, 'done');
    }
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
    if (this.deadline) clearTimeout(this.deadline);
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
