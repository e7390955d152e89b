import { createRng, mixSeed } from './rng.ts';

/** The shuffled order of 0..n-1 for one epoch: a pure function of (seed, epoch), the same on every replica. */
export function epochPermutation(n: number, seed: number, epoch: number): Uint32Array {
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  const rng = createRng(mixSeed(seed, epoch));
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm;
}

function checkWorld(rank: number, world: number): void {
  if (!Number.isInteger(world) || world < 1) throw new Error(`world size must be a positive integer, got ${world}.`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= world) throw new Error(`rank ${rank} is outside 0..${world - 1}.`);
}

/**
 * This rank's share of an epoch, with PyTorch DistributedSampler semantics: the order is padded
 * by wrapping around to a multiple of `world` (so every shard has ceil(n / world) indices), and
 * rank r takes positions r, r + world, r + 2*world, ...
 */
export function shardIndices(order: Uint32Array, rank: number, world: number): Uint32Array {
  checkWorld(rank, world);
  const per = Math.ceil(order.length / world);
  const out = new Uint32Array(per);
  for (let i = 0; i < per; i++) out[i] = order[(rank + i * world) % order.length];
  return out;
}

/**
 * Splits one global batch among `world` ranks into contiguous parts whose sizes differ by at most one
 * (the first `length % world` ranks get one more). Every index goes to exactly one rank.
 */
export function splitBatch(batch: Uint32Array, rank: number, world: number): Uint32Array {
  checkWorld(rank, world);
  const base = Math.floor(batch.length / world);
  const extra = batch.length % world;
  const start = rank * base + Math.min(rank, extra);
  return batch.subarray(start, start + base + (rank < extra ? 1 : 0));
}

export interface PairedBatch {
  readonly step: number;
  readonly epoch: number;
  /** Labelled source-domain indices. */
  readonly source: Uint32Array;
  /** Unlabelled target-domain indices, as many as source. */
  readonly target: Uint32Array;
}

export interface PairedOptions {
  readonly sourceCount: number;
  readonly targetCount: number;
  readonly batchSize: number;
  readonly seed: number;
  readonly epoch: number;
  readonly rank?: number;
  readonly world?: number;
}

/**
 * One epoch of DANN batches for one rank: the source shard in order of the epoch's permutation,
 * batched (last batch may be smaller), each paired with as many target indices taken from the
 * target domain's own shuffled stream (which cycles through target epochs when it runs out).
 */
export function* pairedBatches(o: PairedOptions): Generator<PairedBatch> {
  const rank = o.rank ?? 0;
  const world = o.world ?? 1;
  if (!(o.batchSize >= 1)) throw new Error(`batch size must be at least 1, got ${o.batchSize}.`);
  if (o.sourceCount < 1 || o.targetCount < 1) throw new Error('both domains need at least one image.');
  const source = shardIndices(epochPermutation(o.sourceCount, o.seed, o.epoch), rank, world);
  const targetSeed = mixSeed(o.seed, 0x7a6e7);
  const targetShardLen = Math.ceil(o.targetCount / world);
  // Target position where this source epoch starts, so consecutive epochs continue the target stream.
  let cursor = o.epoch * source.length;
  let cycle = -1;
  let targetShard: Uint32Array = new Uint32Array(0);
  const nextTarget = () => {
    const c = Math.floor(cursor / targetShardLen);
    if (c !== cycle) {
      cycle = c;
      targetShard = shardIndices(epochPermutation(o.targetCount, targetSeed, c), rank, world);
    }
    return targetShard[cursor++ % targetShardLen];
  };
  for (let start = 0, step = 0; start < source.length; start += o.batchSize, step++) {
    const src = source.subarray(start, Math.min(start + o.batchSize, source.length));
    const tgt = new Uint32Array(src.length);
    for (let i = 0; i < tgt.length; i++) tgt[i] = nextTarget();
    yield { step, epoch: o.epoch, source: src, target: tgt };
  }
}
