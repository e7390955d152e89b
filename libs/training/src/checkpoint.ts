import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { writeFileAtomic } from '@dann/data';
import type { OptimizerKind, OptimizerState } from './optimizer.ts';

/**
 * Checkpoint file: "DANNCKPT", u32 header length, JSON header, then float32 weights, optimizer m, optimizer v and
 * the weights' moving average when the run keeps one (little-endian). Written atomically (temp file + rename); the header carries a SHA-256 of the floats.
 */
const MAGIC = 'DANNCKPT';
const FORMAT = 1;

export interface Checkpoint<C = unknown> {
  readonly arch: string;
  /** Training steps (updates) done. */
  readonly step: number;
  readonly epoch: number;
  /** The run's configuration (method, schedule, seeds, ...): enough to continue. */
  readonly config: C;
  readonly weights: Float32Array;
  readonly optimizer: { readonly kind: OptimizerKind; readonly state: OptimizerState };
  /** Anything else worth keeping (validation loss, RNG state, ...). */
  readonly extra?: Record<string, unknown>;
}

interface Header {
  format: number;
  arch: string;
  step: number;
  epoch: number;
  config: unknown;
  extra?: Record<string, unknown>;
  optimizer: { kind: OptimizerKind; step: number; m: number; v: number; ema?: number };
  params: number;
  sha256: string;
}

const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export function encodeCheckpoint(c: Checkpoint): Buffer {
  const { m, v, ema } = c.optimizer.state;
  const hash = createHash('sha256')
    .update(bytes(c.weights))
    .update(bytes(m))
    .update(bytes(v))
    .update(bytes(ema))
    .digest('hex');
  const header: Header = {
    format: FORMAT,
    arch: c.arch,
    step: c.step,
    epoch: c.epoch,
    config: c.config,
    extra: c.extra,
    optimizer: {
      kind: c.optimizer.kind,
      step: c.optimizer.state.step,
      m: m.length,
      v: v.length,
      ...(ema.length ? { ema: ema.length } : {}),
    },
    params: c.weights.length,
    sha256: hash,
  };
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((4 - ((12 + json.length) % 4)) % 4, 0x20)]); // floats start 4-aligned
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  return Buffer.concat([Buffer.from(MAGIC), len, json, bytes(c.weights), bytes(m), bytes(v), bytes(ema)]);
}

export function decodeCheckpoint<C = unknown>(buf: Uint8Array, what = 'checkpoint'): Checkpoint<C> {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 12 || b.toString('latin1', 0, 8) !== MAGIC) throw new Error(`${what}: not a checkpoint file.`);
  const len = b.readUInt32LE(8);
  let h: Header;
  try {
    h = JSON.parse(b.toString('utf8', 12, 12 + len)) as Header;
  } catch {
    throw new Error(`${what}: the header is not valid JSON; the file is corrupt.`);
  }
  if (h.format !== FORMAT) throw new Error(`${what}: format ${h.format} is not supported (expected ${FORMAT}).`);
  const emaCount = h.optimizer.ema ?? 0;
  const floats = h.params + h.optimizer.m + h.optimizer.v + emaCount;
  const start = 12 + len;
  if (b.length !== start + floats * 4)
    throw new Error(`${what}: ${b.length} bytes, expected ${start + floats * 4}; the file is truncated or corrupt.`);
  const all = new Float32Array(floats);
  new Uint8Array(all.buffer).set(b.subarray(start));
  const weights = all.subarray(0, h.params);
  const m = all.subarray(h.params, h.params + h.optimizer.m);
  const v = all.subarray(h.params + h.optimizer.m, floats - emaCount);
  const ema = all.subarray(floats - emaCount);
  const hash = createHash('sha256')
    .update(bytes(weights))
    .update(bytes(m))
    .update(bytes(v))
    .update(bytes(ema))
    .digest('hex');
  if (hash !== h.sha256) throw new Error(`${what}: checksum mismatch; the file is corrupt.`);
  return {
    arch: h.arch,
    step: h.step,
    epoch: h.epoch,
    config: h.config as C,
    extra: h.extra,
    weights,
    optimizer: { kind: h.optimizer.kind, state: { step: h.optimizer.step, m, v, ema } },
  };
}

export function saveCheckpoint(file: string, c: Checkpoint): void {
  writeFileAtomic(file, encodeCheckpoint(c));
}

export function loadCheckpoint<C = unknown>(file: string): Checkpoint<C> {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read checkpoint ${file} (${(err as NodeJS.ErrnoException).code ?? err}).`);
  }
  return decodeCheckpoint<C>(buf, file);
}
