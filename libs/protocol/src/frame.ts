import { Packr } from 'msgpackr';
import {
  DTYPE_BYTES,
  DTYPE_CODE,
  WIRE_DTYPES,
  bf16ToF32,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  type WireDtype,
} from './wire-dtype.ts';
import { ProtocolError, TENSOR_TYPES, validateMessage, type Message } from './messages.ts';

/**
 * One WebSocket binary message = one frame (little-endian):
 *
 *   0  'DANN' magic            8  header bytes (u32)
 *   4  version (u8)           12  payload element count (u32)
 *   5  payload dtype (u8)     16  MessagePack header, then zero padding to a multiple of 4,
 *   6  reserved (u16, 0)          then the payload (count x 4 or 2 bytes)
 *
 * The payload starts 4-aligned within the frame, so a received frame whose bytes start 4-aligned
 * (ws hands out such Buffers in practice) is viewed as a Float32Array without a copy.
 */
export const FRAME_VERSION = 1;
const MAGIC = 0x4e4e4144; // 'DANN' read little-endian
const FIXED = 16;

const packr = new Packr({ useRecords: false, moreTypes: false });

export interface Frame {
  readonly message: Message;
  /** Present exactly for tensor messages (state, gradient, update); always float32 after decoding. */
  readonly payload?: Float32Array;
}

export interface DecodeLimits {
  /** Largest MessagePack header accepted (default 1 MiB: assignment index lists of big batches). */
  readonly maxHeaderBytes?: number;
  /** Largest payload accepted, in elements (size it from the model). */
  readonly maxPayload: number;
}

const align4 = (n: number) => (n + 3) & ~3;

/** Every message has at most this many fields (type included); checked before the header is decoded. */
const MAX_HEADER_KEYS = 16;

/** The entry count of the MessagePack map starting with `lead` at `at`, or null when it is not a map. */
function mapEntries(lead: number, view: DataView, at: number): number | null {
  if (lead >= 0x80 && lead <= 0x8f) return lead & 0x0f;
  if (lead === 0xde) return view.byteLength >= at + 3 ? view.getUint16(at + 1) : null;
  if (lead === 0xdf) return view.byteLength >= at + 5 ? view.getUint32(at + 1) : null;
  return null;
}

/** Encodes a message (and its payload for tensor messages) into one frame. */
export function encodeFrame(message: Message, payload?: Float32Array, dtype: WireDtype = 'f32'): Uint8Array {
  const tensor = TENSOR_TYPES.has(message.type);
  if (tensor !== (payload !== undefined))
    throw new ProtocolError(`${message.type} ${tensor ? 'needs' : 'takes no'} payload.`);
  const header = packr.pack(message);
  const count = payload?.length ?? 0;
  const payloadAt = align4(FIXED + header.length);
  const frame = new Uint8Array(payloadAt + count * DTYPE_BYTES[dtype]);
  const view = new DataView(frame.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint8(4, FRAME_VERSION);
  view.setUint8(5, DTYPE_CODE[dtype]);
  view.setUint32(8, header.length, true);
  view.setUint32(12, count, true);
  frame.set(header, FIXED);
  if (payload) {
    if (dtype === 'f32') new Float32Array(frame.buffer, payloadAt, count).set(payload);
    else (dtype === 'bf16' ? f32ToBf16 : f32ToF16)(payload, new Uint16Array(frame.buffer, payloadAt, count));
  }
  return frame;
}

/**
 * Decodes and validates one frame: magic, version, dtype, lengths (exact), header schema, payload
 * presence and size. Throws ProtocolError with one sentence; never returns a partial result.
 */
export function decodeFrame(bytes: Uint8Array, limits: DecodeLimits): Frame {
  if (bytes.length < FIXED)
    throw new ProtocolError(`frame of ${bytes.length} bytes is shorter than its ${FIXED}-byte preamble.`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new ProtocolError('not a DANN frame (bad magic).');
  if (view.getUint8(4) !== FRAME_VERSION)
    throw new ProtocolError(`frame version ${view.getUint8(4)} is not ${FRAME_VERSION}.`);
  const dtype = WIRE_DTYPES[view.getUint8(5)];
  if (!dtype) throw new ProtocolError(`unknown payload dtype code ${view.getUint8(5)}.`);
  const headerBytes = view.getUint32(8, true);
  const count = view.getUint32(12, true);
  if (headerBytes === 0 || headerBytes > (limits.maxHeaderBytes ?? 1 << 20))
    throw new ProtocolError(`header of ${headerBytes} bytes is out of bounds.`);
  if (count > limits.maxPayload)
    throw new ProtocolError(`payload of ${count} values exceeds the limit of ${limits.maxPayload}.`);
  const payloadAt = align4(FIXED + headerBytes);
  const expected = payloadAt + count * DTYPE_BYTES[dtype];
  if (bytes.length !== expected)
    throw new ProtocolError(`frame is ${bytes.length} bytes but its lengths say ${expected} (truncated or padded).`);
  const entries = mapEntries(bytes[FIXED], view, FIXED);
  if (entries === null) throw new ProtocolError('a message header must be a MessagePack map.');
  if (entries > MAX_HEADER_KEYS)
    throw new ProtocolError(`a message header has ${entries} keys, more than ${MAX_HEADER_KEYS}.`);
  let header: unknown;
  try {
    header = packr.unpack(bytes.subarray(FIXED, FIXED + headerBytes));
  } catch {
    throw new ProtocolError('the frame header is not valid MessagePack.');
  }
  const message = validateMessage(header);
  const tensor = TENSOR_TYPES.has(message.type);
  if (!tensor) {
    if (count !== 0) throw new ProtocolError(`${message.type} carries no payload, but the frame has ${count} values.`);
    return { message };
  }
  const start = bytes.byteOffset + payloadAt;
  // A Buffer's slice() is a view, so an unaligned payload is copied into a fresh array explicitly.
  const copy = () => Uint8Array.prototype.slice.call(bytes, payloadAt).buffer;
  let payload: Float32Array;
  if (dtype === 'f32') {
    payload = start % 4 === 0 ? new Float32Array(bytes.buffer, start, count) : new Float32Array(copy(), 0, count);
  } else {
    const halves = start % 2 === 0 ? new Uint16Array(bytes.buffer, start, count) : new Uint16Array(copy(), 0, count);
    payload = new Float32Array(count);
    (dtype === 'bf16' ? bf16ToF32 : f16ToF32)(halves, payload);
  }
  return { message, payload };
}

/** Index of the first non-finite value, or -1. */
export function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return i;
  return -1;
}
