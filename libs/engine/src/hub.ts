import {
  encodeFrame,
  PROTOCOL_VERSION,
  type Frame,
  type Gradient,
  type Hello,
  type Message,
  type WireDtype,
} from '@dann/protocol';
import { StepRound, type Shard } from './round.ts';
import type { Aggregate } from './aggregate.ts';
import type { OptimizerState } from '@dann/training';

/** A connected trainer, seen through the two things a hub does with it. */
export interface Peer {
  send(bytes: Uint8Array): void;
  close(code: number, reason: string): void;
}

/** One batch to compute: a coordinator's step, or the shard a relay was assigned by its upstream. */
export interface Task {
  readonly step: number;
  readonly epoch: number;
  readonly source: Uint32Array;
  readonly target: Uint32Array;
  readonly lambda: number;
  readonly seed: number;
}

/** A finished round: the combined gradient of every sample of the task, and what its shards reported. */
export interface RoundResult {
  readonly task: Task;
  readonly gradient: Float32Array;
  readonly samples: number;
  /** Sample-weighted means of the shards' figures. */
  readonly labelLoss: number;
  readonly domainLoss: number;
  readonly labelAcc: number;
  readonly domainAcc: number;
  /** Shards in the average, the slowest shard's compute time, and the round's wall time. */
  readonly shards: number;
  readonly computeMs: number;
  readonly roundMs: number;
  /** Time spent combining the shards' gradients. */
  readonly averageMs: number;
  /** Source indices in the average (each exactly once). */
  readonly usedSource: number[];
  /** Trainers whose gradient was an outlier (its shard recomputed), and recomputed shards scaled down. */
  readonly outliers: number;
  readonly clipped: number;
}

/** How a hub treats its trainers: the coordinator's and the relay's shared options. */
export interface HubPolicy {
  /** Trainers send a weight checksum after every update whose step number is a multiple of this. */
  readonly checksumEvery: number;
  readonly wireDtype: WireDtype;
  /** Trainers needed before a round starts. */
  readonly minTrainers: number;
  /** A trainer that has not answered its shard within this many ms is dropped and its shard re-planned. */
  readonly stepTimeoutMs: number;
  /** How shard gradients are combined (aggregate.ts) and the clipped-mean's bound (x the median norm). */
  readonly aggregate: Aggregate;
  readonly clipFactor: number;
  /** A trainer whose gradient is an outlier (see recomputeOutliers) in this many consecutive rounds is dropped (0 = never). */
  readonly maxOutlierSteps: number;
  /** At most one resync (full state) per trainer within this many ms. */
  readonly resyncIntervalMs: number;
  readonly log: (line: string) => void;
}

export interface HubOptions extends HubPolicy {
  /** What every trainer is told in its welcome. */
  readonly settings: Record<string, unknown>;
  readonly paramCount: number;
  /** The owner's replica: its state (what joiners and resynced trainers get) and its weights' checksum. */
  readonly replica: { state(): ReplicaState; checksum(): number };
  /** A trainer joined: the owner may start a round. */
  readonly onJoin: () => void;
  /** Every shard of the round is answered. */
  readonly onRound: (r: RoundResult) => void;
}

/** A replica's position and full state. */
export interface ReplicaState {
  readonly step: number;
  readonly epoch: number;
  readonly weights: Float32Array;
  readonly optimizer: OptimizerState;
}

/**
 * A replica's full state as one frame: weights, optimizer moments and the weights' moving average, concatenated.
 * Always f32: replicas must start bit-identical.
 */
function encodeState(step: number, epoch: number, weights: Float32Array, optimizer: OptimizerState): Uint8Array {
  const parts = [weights, optimizer.m, optimizer.v, optimizer.ema];
  const payload = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    payload.set(p, at);
    at += p.length;
  }
  const sizes = parts.map((p) => p.length);
  return encodeFrame({ type: 'state', step, epoch, optimizerStep: optimizer.step, sizes }, payload, 'f32');
}

interface Member {
  readonly id: number;
  /** The trainer's name, made unique among connected trainers: the one identity logs and the status page use. */
  readonly label: string;
  readonly hello: Hello;
  readonly peer: Peer;
  steps: number;
  computeMs: number;
  /** Consecutive steps in which this trainer's gradient was an outlier. */
  outlierRun: number;
  lastResync: number;
}

/** A trainer the hub dropped for what it sent (named on the status page). */
export interface Removed {
  readonly id: number;
  readonly name: string;
  readonly step: number;
  readonly reason: string;
}

/** What a shard's gradient message reported besides the gradient. */
type ShardReport = Pick<Gradient, 'samples' | 'labelLoss' | 'domainLoss' | 'labelAcc' | 'domainAcc' | 'computeMs'>;

/**
 * The trainers connected to one process, over abstract peers, and one round at a time over them: the part a
 * coordinator and a relay share. It welcomes trainers and sends them the owner's state, splits a task over the
 * live trainers (StepRound), re-plans the shards of trainers that leave or miss the deadline, has outliers'
 * shards recomputed, resyncs a trainer whose checksum differs from the owner's replica, and hands the owner the
 * combined gradient. What to do with it (apply and broadcast, or forward upstream) is the owner's.
 */
export class Hub {
  private readonly members = new Map<number, Member>();
  private nextId = 1;
  private round: { task: Task; steps: StepRound; started: number } | null = null;
  private deadline: NodeJS.Timeout | null = null;
  private waitingSaid = -1;
  /** The step of the last round abandoned unfinished: its late gradients are dropped without a word. */
  private abandoned = -1;
  /** Trainers dropped for what they sent, newest last (bounded). */
  readonly removed: Removed[] = [];
  /** Per answered shard of the current round: its losses and compute time. */
  private readonly partial = new Map<number, ShardReport>();
  /** Trainers whose gradient was an outlier in the current round. */
  private readonly outlierTrainers = new Set<number>();
  /** Set once the run is over: trainers that connect are told so. */
  finished = false;
  /** The last state frame, reused until the replica's step or weights change. */
  private stateCache: { step: number; weights: Float32Array; frame: Uint8Array } | null = null;

  constructor(private readonly o: HubOptions) {}

  get size(): number {
    return this.members.size;
  }

  get busy(): boolean {
    return this.round !== null;
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

  /** The owner's full state as one frame, built once per step (and per replaced state) and shared by every peer. */
  stateFrame(): Uint8Array {
    const r = this.o.replica.state();
    const c = this.stateCache;
    if (c?.step !== r.step || c.weights !== r.weights)
      this.stateCache = {
        step: r.step,
        weights: r.weights,
        frame: encodeState(r.step, r.epoch, r.weights, r.optimizer),
      };
    return this.stateCache!.frame;
  }

  private sendTo(m: Member, message: Message, payload?: Float32Array): void {
    m.peer.send(encodeFrame(message, payload, this.o.wireDtype));
  }

  /** The same bytes to every trainer (an update, a state). */
  broadcast(frame: Uint8Array): void {
    for (const m of this.members.values()) m.peer.send(frame);
  }

  /** A trainer said hello: welcome it, send the current state; it takes part from the next round. */
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
    if (this.finished) {
      peer.send(encodeFrame({ type: 'leave', code: 'finished' }));
      peer.close(1000, 'done');
      return null;
    }
    const id = this.nextId++;
    const taken = new Set([...this.members.values()].map((x) => x.label));
    const label = taken.has(hello.name) ? `${hello.name}#${id}` : hello.name;
    const m: Member = { id, label, hello, peer, steps: 0, computeMs: 0, outlierRun: 0, lastResync: Date.now() };
    this.members.set(id, m);
    this.sendTo(m, {
      type: 'welcome',
      trainerId: id,
      settings: this.o.settings,
      checksumEvery: this.o.checksumEvery,
      paramCount: this.o.paramCount,
      wireDtype: this.o.wireDtype,
    });
    peer.send(this.stateFrame());
    this.o.log(
      `trainer ${label} joined (${hello.backend} on ${hello.device}) at step ${this.o.replica.state().step}; ${this.members.size} connected`,
    );
    this.o.onJoin();
    return id;
  }

  /** A trainer disconnected or was dropped: re-plan its unanswered shards over the others. */
  leave(id: number, reason: string): void {
    const m = this.members.get(id);
    if (!m) return;
    this.members.delete(id);
    this.o.log(`trainer ${m.label} left (${reason}); ${this.members.size} connected`);
    if (this.round && !this.finished) {
      if (this.members.size === 0) return; // the round waits; shards are re-planned when someone joins
      for (const s of this.round.steps.drop(id, this.liveIds)) this.assign(s);
    }
  }

  private assign(s: Shard): void {
    const { task } = this.round!;
    this.sendTo(this.members.get(s.trainer)!, {
      type: 'assign',
      step: task.step,
      shard: s.id,
      epoch: task.epoch,
      source: [...s.source],
      target: [...s.target],
      lambda: task.lambda,
      seed: task.seed,
    });
  }

  /**
   * Whether enough trainers are here to start a round; when not, says so once per change of count. A round
   * orphaned by everyone leaving gets its shards back once a trainer is here.
   */
  ready(): boolean {
    if (this.round) {
      if (this.members.size > 0)
        for (const s of this.round.steps.pending)
          if (!this.members.has(s.trainer))
            for (const n of this.round.steps.drop(s.trainer, this.liveIds)) this.assign(n);
      return false;
    }
    if (this.members.size < this.o.minTrainers) {
      if (this.waitingSaid !== this.members.size) {
        this.waitingSaid = this.members.size;
        const msg = `waiting for trainers: ${this.members.size} of at least ${this.o.minTrainers} connected`;
        this.o.log(msg);
        for (const m of this.members.values()) this.sendTo(m, { type: 'wait', message: msg });
      }
      return false;
    }
    this.waitingSaid = -1;
    return true;
  }

  /** Splits `task` over the live trainers (the caller checked `ready()`). */
  start(task: Task): void {
    if (this.round) throw new Error(`step ${task.step} cannot start while step ${this.round.task.step} runs.`);
    this.round = {
      task,
      steps: new StepRound(task.step, task.source, task.target, this.liveIds, this.o.paramCount),
      started: performance.now(),
    };
    this.partial.clear();
    this.outlierTrainers.clear();
    for (const s of this.round.steps.pending) this.assign(s);
    this.armDeadline();
  }

  /** Drops the running round unfinished (its task went elsewhere); late answers to it are ignored. */
  abandon(): void {
    if (!this.round) return;
    this.abandoned = this.round.task.step;
    this.round = null;
    if (this.deadline) clearTimeout(this.deadline);
  }

  private armDeadline(): void {
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = setTimeout(() => {
      if (!this.round) return;
      const late = [...new Set(this.round.steps.pending.map((s) => s.trainer))];
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
    const msg = frame.message;
    switch (msg.type) {
      case 'gradient': {
        const round = this.round;
        if (!round && msg.step === this.abandoned) return null;
        if (!round || msg.step !== round.task.step)
          return `gradient for step ${msg.step}, but the current step is ${round?.task.step ?? 'none'}.`;
        const why = round.steps.receive(msg.shard, id, msg.samples, frame.payload!);
        if (why) return why;
        m.steps++;
        m.computeMs += msg.computeMs;
        const { samples, labelLoss, domainLoss, labelAcc, domainAcc, computeMs } = msg;
        this.partial.set(msg.shard, { samples, labelLoss, domainLoss, labelAcc, domainAcc, computeMs });
        if (round.steps.complete && !this.recomputeOutliers(round.steps)) this.finishRound();
        return null;
      }
      case 'checksum': {
        if (msg.step !== this.o.replica.state().step) return null; // a late checksum; the next one will tell
        if (msg.value !== this.o.replica.checksum()) {
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

  private finishRound(): void {
    const { task, steps, started } = this.round!;
    if (this.deadline) clearTimeout(this.deadline);
    const averageStart = performance.now();
    const { gradient, samples, clipped } = steps.average(this.o.aggregate, this.o.clipFactor);
    for (const c of clipped)
      this.o.log(
        `step ${task.step}: trainer ${this.nameOf(c.trainer)}'s recomputed gradient norm ${c.norm.toExponential(2)} is still over ${this.o.clipFactor} x the median; scaled to ${c.bound.toExponential(2)}`,
      );
    for (const id of steps.contributors()) {
      const m = this.members.get(id); // a contributor may have left since it answered
      if (m && !this.outlierTrainers.has(id)) m.outlierRun = 0;
    }
    const parts = [...this.partial.values()];
    const w = (k: 'labelLoss' | 'domainLoss' | 'labelAcc' | 'domainAcc') =>
      parts.reduce((a, p) => a + p[k] * p.samples, 0) / samples;
    this.round = null;
    this.o.onRound({
      task,
      gradient,
      samples,
      labelLoss: w('labelLoss'),
      domainLoss: w('domainLoss'),
      labelAcc: w('labelAcc'),
      domainAcc: w('domainAcc'),
      shards: parts.length,
      computeMs: Math.max(...parts.map((p) => p.computeMs)),
      roundMs: performance.now() - started,
      averageMs: performance.now() - averageStart,
      usedSource: steps.usedSource(),
      outliers: this.outlierTrainers.size,
      clipped: clipped.length,
    });
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
        `step ${round.step}: trainer ${this.nameOf(o.trainer)}'s gradient norm ${o.norm.toExponential(2)} is over ${this.o.clipFactor} x the median ${o.median.toExponential(2)}; the others recompute its shard`,
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
        this.removed.push({ id, name: m.label, step: round.step, reason });
        if (this.removed.length > 100) this.removed.shift();
        m.peer.close(4001, 'gradient an outlier too often');
        this.leave(id, `dropped: ${reason}`);
      }
    }
    return true;
  }

  /** The run is over: every trainer is told so and closed; later ones are told at their hello. */
  finish(): void {
    this.finished = true;
    this.close();
    for (const m of this.members.values()) {
      this.sendTo(m, { type: 'leave', code: 'finished' });
      m.peer.close(1000, 'done');
    }
  }

  /** Stops the step deadline (a run abandoned after an error). */
  close(): void {
    if (this.deadline) clearTimeout(this.deadline);
  }
}
