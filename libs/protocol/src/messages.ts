/**
 * The messages between coordinator and trainers: a discriminated union on `type`. Control messages
 * are a MessagePack header alone; tensor messages (state, gradient, update) carry one float payload
 * after the header (see frame.ts). Every decoded header is checked against SCHEMAS before use.
 */
export const PROTOCOL_VERSION = 4;

/** Why a peer leaves: `finished` (coordinator: the run is over), `shutdown` (trainer: it is stopping). */
export const LEAVE_CODES = ['finished', 'shutdown'] as const;
export type LeaveCode = (typeof LEAVE_CODES)[number];
/** What an error is about; the message says it in words for people, the code is what programs act on. */
export const ERROR_CODES = ['protocol-version', 'bad-frame', 'refused'] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** trainer -> coordinator, first message. */
export interface Hello {
  type: 'hello';
  protocol: number;
  name: string;
  backend: string;
  device: string;
}
/**
 * coordinator -> trainer: accepted; the run's settings (option name -> value, as in a configs/NAME.json file: the
 * trainer validates them and builds the same run config), how often to send a checksum, the parameter count.
 */
export interface Welcome {
  type: 'welcome';
  trainerId: number;
  settings: Record<string, unknown>;
  checksumEvery: number;
  paramCount: number;
  wireDtype: string;
}
/** coordinator -> trainer: weights, optimizer moments and position (payload: weights, m, v and the weight average, concatenated; `sizes` gives their lengths). */
export interface State {
  type: 'state';
  step: number;
  epoch: number;
  optimizerStep: number;
  sizes: number[];
}
/** coordinator -> trainer: compute shard `shard` of step `step` on these source/target indices. */
export interface Assign {
  type: 'assign';
  step: number;
  shard: number;
  epoch: number;
  source: number[];
  target: number[];
  lambda: number;
  seed: number;
}
/** trainer -> coordinator: the gradient of the mean loss over `samples` source samples (payload). */
export interface Gradient {
  type: 'gradient';
  step: number;
  shard: number;
  samples: number;
  labelLoss: number;
  domainLoss: number;
  labelAcc: number;
  domainAcc: number;
  computeMs: number;
}
/** coordinator -> trainers: the sample-weighted average gradient of step `step` (payload); every replica applies it. */
export interface Update {
  type: 'update';
  step: number;
  samples: number;
  lr: number;
  trainers: number;
}
/** trainer -> coordinator: a checksum of its weights after applying step `step`'s update. */
export interface Checksum {
  type: 'checksum';
  step: number;
  value: number;
}
/** coordinator -> trainer: not enough trainers, or between steps. */
export interface Wait {
  type: 'wait';
  message: string;
}
export interface Leave {
  type: 'leave';
  code: LeaveCode;
}
export interface ErrorMessage {
  type: 'error';
  code: ErrorCode;
  message: string;
}

export type Message = Hello | Welcome | State | Assign | Gradient | Update | Checksum | Wait | Leave | ErrorMessage;
export type MessageType = Message['type'];
export type TensorMessage = State | Gradient | Update;

type FieldKind = 'int' | 'uint' | 'number' | 'string' | 'uintArray' | 'object' | { readonly oneOf: readonly string[] };

/** Field kinds per message type; `number` may be NaN (losses of source-only steps), never Infinity. */
export const SCHEMAS: Record<MessageType, Record<string, FieldKind>> = {
  hello: { protocol: 'uint', name: 'string', backend: 'string', device: 'string' },
  welcome: { trainerId: 'uint', settings: 'object', checksumEvery: 'uint', paramCount: 'uint', wireDtype: 'string' },
  state: { step: 'uint', epoch: 'uint', optimizerStep: 'uint', sizes: 'uintArray' },
  assign: {
    step: 'uint',
    shard: 'uint',
    epoch: 'uint',
    source: 'uintArray',
    target: 'uintArray',
    lambda: 'number',
    seed: 'uint',
  },
  gradient: {
    step: 'uint',
    shard: 'uint',
    samples: 'uint',
    labelLoss: 'number',
    domainLoss: 'number',
    labelAcc: 'number',
    domainAcc: 'number',
    computeMs: 'number',
  },
  update: { step: 'uint', samples: 'uint', lr: 'number', trainers: 'uint' },
  checksum: { step: 'uint', value: 'number' },
  wait: { message: 'string' },
  leave: { code: { oneOf: LEAVE_CODES } },
  error: { code: { oneOf: ERROR_CODES }, message: 'string' },
};

export const TENSOR_TYPES: ReadonlySet<MessageType> = new Set(['state', 'gradient', 'update']);

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

const MAX_STRING = 4096;
const MAX_ARRAY = 1 << 20;

function check(kind: FieldKind, v: unknown): boolean {
  if (typeof kind === 'object') return typeof v === 'string' && kind.oneOf.includes(v);
  switch (kind) {
    case 'int':
      return Number.isSafeInteger(v);
    case 'uint':
      return Number.isSafeInteger(v) && (v as number) >= 0;
    case 'number':
      return typeof v === 'number' && (Number.isFinite(v) || Number.isNaN(v));
    case 'string':
      return typeof v === 'string' && v.length <= MAX_STRING;
    case 'uintArray':
      return Array.isArray(v) && v.length <= MAX_ARRAY && v.every((x) => Number.isSafeInteger(x) && x >= 0);
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
  }
}

function describeKind(kind: FieldKind): string {
  if (typeof kind === 'object') return `one of ${kind.oneOf.join(', ')}`;
  return kind === 'uint'
    ? 'a non-negative integer'
    : kind === 'uintArray'
      ? 'an array of non-negative integers'
      : `a ${kind}`;
}

/** Checks a decoded header against its schema; throws one sentence naming the first bad field. */
export function validateMessage(value: unknown): Message {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ProtocolError('a message header must be an object.');
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string' || !(type in SCHEMAS))
    throw new ProtocolError(`unknown message type ${JSON.stringify(type)?.slice(0, 40)}.`);
  for (const [field, kind] of Object.entries(SCHEMAS[type as MessageType])) {
    if (!check(kind, (value as Record<string, unknown>)[field]))
      throw new ProtocolError(`${type}.${field} must be ${describeKind(kind)}.`);
  }
  return value as Message;
}

/** Weight checksum every replica computes the same way: FNV-1a over the float32 words, as 32 bits. */
export function weightChecksum(weights: Float32Array): number {
  const words = new Uint32Array(weights.buffer, weights.byteOffset, weights.length);
  let h = 0x811c9dc5;
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i], 0x01000193);
  return h >>> 0;
}
