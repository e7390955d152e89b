import { splitBatch } from '@dann/data';
import { aggregate, DEFAULT_CLIP_FACTOR, l2norm, type Aggregate } from './aggregate.ts';

/** A piece of one step's batch, computed by one trainer. */
export interface Shard {
  /** Order of creation within the step: the order gradients are summed in. */
  readonly id: number;
  readonly trainer: number;
  readonly source: Uint32Array;
  readonly target: Uint32Array;
}

interface Received {
  readonly samples: number;
  readonly gradient: Float32Array;
}

/**
 * One synchronous step at the coordinator, without sockets: splits the step's batch over the live
 * trainers (in rank order), collects one gradient per shard, re-plans the shards of trainers that
 * leave or miss the deadline over the remaining ones (so every sample of the batch is used exactly
 * once), and averages the gradients weighted by sample count in shard order (deterministic).
 */
export class StepRound {
  private readonly shards = new Map<number, Shard>();
  private readonly received = new Map<number, Received>();
  /** Shards made from a rejected outlier's: their own answers are never rejected again. */
  private readonly retries = new Set<number>();
  private nextId = 0;

  constructor(
    readonly step: number,
    readonly source: Uint32Array,
    readonly target: Uint32Array,
    trainers: readonly number[],
    readonly paramCount: number,
  ) {
    if (trainers.length === 0) throw new Error('a step needs at least one trainer.');
    this.plan(source, target, trainers);
  }

  private plan(source: Uint32Array, target: Uint32Array, trainers: readonly number[]): Shard[] {
    const made: Shard[] = [];
    const world = Math.min(trainers.length, source.length);
    for (let r = 0; r < world; r++) {
      const shard = {
        id: this.nextId++,
        trainer: trainers[r],
        source: splitBatch(source, r, world),
        target: splitBatch(target, r, world),
      };
      this.shards.set(shard.id, shard);
      made.push(shard);
    }
    return made;
  }

  /** Shards not yet answered. */
  get pending(): Shard[] {
    return [...this.shards.values()].filter((s) => !this.received.has(s.id));
  }

  get complete(): boolean {
    return this.pending.length === 0;
  }

  shardsOf(trainer: number): Shard[] {
    return this.pending.filter((s) => s.trainer === trainer);
  }

  /**
   * Records a gradient for a shard. Returns null when accepted, or one sentence saying why not
   * (wrong shard, wrong sample count, wrong length, non-finite values): a rejected gradient never
   * reaches the average.
   */
  receive(shardId: number, trainer: number, samples: number, gradient: Float32Array): string | null {
    const shard = this.shards.get(shardId);
    if (!shard || shard.trainer !== trainer)
      return `shard ${shardId} of step ${this.step} is not assigned to trainer ${trainer}.`;
    if (this.received.has(shardId)) return `shard ${shardId} of step ${this.step} was already answered.`;
    if (samples !== shard.source.length)
      return `shard ${shardId} has ${shard.source.length} samples, the gradient claims ${samples}.`;
    if (gradient.length !== this.paramCount)
      return `the gradient has ${gradient.length} values, the model ${this.paramCount}.`;
    for (let i = 0; i < gradient.length; i++)
      if (!Number.isFinite(gradient[i])) return `the gradient holds a non-finite value at ${i}.`;
    this.received.set(shardId, { samples, gradient });
    return null;
  }

  /**
   * A trainer left or missed the deadline: its unanswered shards are split again over `live`
   * trainers (rank order). Returns the new shards to send. Throws when nobody is left.
   */
  drop(trainer: number, live: readonly number[]): Shard[] {
    const orphans = this.shardsOf(trainer);
    for (const s of orphans) this.shards.delete(s.id);
    if (orphans.length === 0) return [];
    if (live.length === 0)
      throw new Error(`step ${this.step}: no trainer left to take over trainer ${trainer}'s shards.`);
    return orphans.flatMap((s) => this.plan(s.source, s.target, live));
  }

  /**
   * Answered shards (not themselves retries) whose gradient norm exceeds `factor` x the lower median
   * norm of the step's answers: candidates to be recomputed by other trainers.
   */
  outliers(factor: number): { shard: number; trainer: number; norm: number; median: number }[] {
    const norms = [...this.received].map(([shard, r]) => ({ shard, norm: l2norm(r.gradient) }));
    const sorted = norms.map((n) => n.norm).sort((a, b) => a - b);
    const median = sorted[(sorted.length - 1) >> 1];
    return norms
      .filter((n) => n.norm > factor * median && median > 0 && !this.retries.has(n.shard))
      .map((n) => ({ ...n, trainer: this.shards.get(n.shard)!.trainer, median }));
  }

  /** Discards an answered shard's gradient and splits its samples over `live` trainers; returns the new shards. */
  reject(shardId: number, live: readonly number[]): Shard[] {
    const shard = this.shards.get(shardId);
    if (!shard || !this.received.has(shardId))
      throw new Error(`shard ${shardId} of step ${this.step} has no answer to reject.`);
    if (live.length === 0) throw new Error(`step ${this.step}: no trainer left to recompute shard ${shardId}.`);
    this.shards.delete(shardId);
    this.received.delete(shardId);
    const made = this.plan(shard.source, shard.target, live);
    for (const s of made) this.retries.add(s.id);
    return made;
  }

  /**
   * The shard gradients combined by `rule` (aggregate.ts), in shard order; `clipped` names the
   * trainers whose gradient norm was bounded.
   */
  average(
    rule: Aggregate = 'mean',
    clipFactor = DEFAULT_CLIP_FACTOR,
  ): {
    gradient: Float32Array;
    samples: number;
    rule: Aggregate;
    clipped: { trainer: number; norm: number; bound: number }[];
  } {
    if (!this.complete) throw new Error(`step ${this.step} still waits for ${this.pending.length} shard(s).`);
    const ids = [...this.received.keys()].sort((a, b) => a - b);
    const result = aggregate(
      ids.map((id) => this.received.get(id)!),
      rule,
      clipFactor,
    );
    const clipped = result.clipped.map((c) => ({
      trainer: this.shards.get(ids[c.index])!.trainer,
      norm: c.norm,
      bound: c.bound,
    }));
    return { gradient: result.gradient, samples: result.samples, rule: result.rule, clipped };
  }

  /** Trainers whose gradients are in this step's average. */
  contributors(): number[] {
    return [...new Set([...this.received.keys()].map((id) => this.shards.get(id)!.trainer))];
  }

  /** Source indices whose gradients made it into the average (each exactly once). */
  usedSource(): number[] {
    return [...this.received.keys()].flatMap((id) => [...this.shards.get(id)!.source]);
  }
}
