import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Packr } from 'msgpackr';
import { decodeFrame, encodeFrame, firstNonFinite } from './frame.ts';
import { ProtocolError, type Message } from './messages.ts';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './wire-dtype.ts';

const limits = { maxPayload: 1000 };
const gradient: Message = {
  type: 'gradient',
  step: 3,
  shard: 0,
  samples: 64,
  labelLoss: 1.5,
  domainLoss: NaN,
  labelAcc: 0.5,
  domainAcc: NaN,
  computeMs: 12.5,
};

test('every control message round-trips through a frame', () => {
  const messages: Message[] = [
    { type: 'hello', protocol: 1, name: 'host-1', backend: 'wasm', device: 'cpu' },
    {
      type: 'welcome',
      trainerId: 2,
      settings: { method: 'dann', epochs: 2 },
      checksumEvery: 10,
      paramCount: 10,
      wireDtype: 'f32',
    },
    { type: 'assign', step: 7, shard: 1, epoch: 0, source: [1, 5, 9], target: [0, 2], lambda: 0.25, seed: 99 },
    { type: 'checksum', step: 7, value: 123456789 },
    { type: 'wait', message: 'waiting for 1 more trainer' },
    { type: 'leave', code: 'finished' },
    { type: 'error', code: 'refused', message: 'bad token' },
  ];
  for (const m of messages) assert.deepEqual(decodeFrame(encodeFrame(m), limits), { message: m });
});

test('a gradient round-trips exactly in f32, viewed without a copy when aligned', () => {
  const g = Float32Array.from({ length: 101 }, (_, i) => Math.sin(i) * 1e-3);
  const bytes = encodeFrame(gradient, g);
  const { message, payload } = decodeFrame(bytes, limits);
  assert.ok(Number.isNaN((message as { domainLoss: number }).domainLoss));
  assert.deepEqual(payload, g);
  assert.equal(payload!.buffer, bytes.buffer, 'aligned payload is a view of the received bytes');
  // The same frame at an odd offset inside a bigger buffer: decoded by copying, same values.
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  const copy = decodeFrame(shifted.subarray(1), limits).payload!;
  assert.notEqual(copy.buffer, shifted.buffer);
  assert.deepEqual(copy, g);
});

test('a frame inside a bigger Node Buffer at an unaligned offset (as ws hands over a socket read) decodes to a copy', () => {
  const g = Float32Array.from([1, -2, 3.5, 4]);
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    const bytes = encodeFrame({ type: 'state', step: 0, epoch: 0, optimizerStep: 0, sizes: [4] }, g, dtype);
    const read = Buffer.alloc(bytes.length + 1027); // the socket read holds more than this message
    read.set(bytes, 3);
    const { payload } = decodeFrame(read.subarray(3, 3 + bytes.length), limits);
    assert.deepEqual(payload, g, dtype);
  }
});

test('a header that is not a map, or a map with more keys than any message has, is refused before it is decoded', () => {
  const frame = (header: Uint8Array) => {
    const bytes = new Uint8Array(16 + ((header.length + 3) & ~3));
    const view = new DataView(bytes.buffer);
    view.setUint32(0, 0x4e4e4144, true);
    view.setUint8(4, 1);
    view.setUint32(8, header.length, true);
    bytes.set(header, 16);
    return bytes;
  };
  const wide = new Packr({ useRecords: false }).pack(
    Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, i])),
  );
  assert.throws(() => decodeFrame(frame(wide), limits), {
    name: 'ProtocolError',
    message: 'a message header has 17 keys, more than 16.',
  });
  const map32 = Uint8Array.from([0xdf, 0, 1, 0x86, 0xa0]); // claims 100,000 keys
  assert.throws(() => decodeFrame(frame(map32), limits), {
    name: 'ProtocolError',
    message: 'a message header has 100000 keys, more than 16.',
  });
  assert.throws(() => decodeFrame(frame(Uint8Array.from([0x93, 1, 2, 3])), limits), {
    name: 'ProtocolError',
    message: 'a message header must be a MessagePack map.',
  });
});

test('bf16 and f16 halve the payload; values round to nearest within their precision; NaN and Infinity survive', () => {
  const g = Float32Array.from([0, -0, 1, -2.5, Math.PI, 1e-3, 65504, 1e-8, NaN, Infinity, -Infinity, 123456]);
  for (const [dtype, rel] of [
    ['bf16', 2 ** -8],
    ['f16', 2 ** -11],
  ] as const) {
    const bytes = encodeFrame(gradient, g, dtype);
    assert.equal(bytes.length, encodeFrame(gradient, g).length - g.length * 2);
    const out = decodeFrame(bytes, limits).payload!;
    for (let i = 0; i < g.length; i++) {
      if (Number.isNaN(g[i])) assert.ok(Number.isNaN(out[i]), `${dtype} NaN`);
      else if (!Number.isFinite(g[i]) || g[i] === 0) assert.equal(out[i], g[i], `${dtype} ${g[i]}`);
      else if (dtype === 'f16' && Math.abs(g[i]) > 65504) assert.equal(out[i], Infinity, 'f16 overflows to Infinity');
      else if (dtype === 'f16' && Math.abs(g[i]) < 6e-8) assert.ok(Math.abs(out[i]) < 6e-8);
      else assert.ok(Math.abs(out[i] - g[i]) <= Math.abs(g[i]) * rel, `${dtype} ${g[i]} -> ${out[i]}`);
    }
  }
  // Round-to-nearest-even at the bf16 halfway point: 1 + 2^-8 is exactly between 1 and 1 + 2^-7.
  const h = new Uint16Array(1),
    back = new Float32Array(1);
  f32ToBf16(Float32Array.of(1 + 2 ** -8), h);
  bf16ToF32(h, back);
  assert.equal(back[0], 1);
  f32ToF16(Float32Array.of(1 + 2 ** -11), h);
  f16ToF32(h, back);
  assert.equal(back[0], 1);
  f32ToF16(Float32Array.of(2 ** -20), h);
  f16ToF32(h, back);
  assert.equal(back[0], 2 ** -20, 'f16 subnormals');
});

function rejects(bytes: Uint8Array, pattern: RegExp, l = limits): void {
  assert.throws(
    () => decodeFrame(bytes, l),
    (e: unknown) => e instanceof ProtocolError && pattern.test(e.message),
  );
}

test('bad frames are refused with one sentence each', () => {
  const good = encodeFrame(gradient, new Float32Array(10));
  rejects(good.subarray(0, 10), /shorter than its 16-byte preamble/);
  rejects(good.subarray(0, good.length - 4), /truncated or padded/);
  rejects(Uint8Array.from([...good, 0, 0, 0, 0]), /truncated or padded/);
  const magic = good.slice();
  magic[0] = 0x58;
  rejects(magic, /bad magic/);
  const version = good.slice();
  version[4] = 9;
  rejects(version, /version 9/);
  const dtype = good.slice();
  dtype[5] = 7;
  rejects(dtype, /dtype code 7/);
  rejects(good, /exceeds the limit of 5/, { maxPayload: 5 });
  const huge = good.slice();
  new DataView(huge.buffer).setUint32(8, 1 << 30, true);
  rejects(huge, /header of \d+ bytes is out of bounds/);
  const garbage = good.slice();
  garbage.fill(0xc1, 16, 20); // 0xc1 is never valid MessagePack
  rejects(garbage, /not valid MessagePack|must be an object|must be a MessagePack map|unknown message type/);
  // Valid frames around invalid messages.
  const raw = (header: unknown, count = 0) => {
    const h = new Packr({ useRecords: false }).pack(header);
    const at = (16 + h.length + 3) & ~3;
    const f = new Uint8Array(at + count * 4);
    const v = new DataView(f.buffer);
    v.setUint32(0, 0x4e4e4144, true);
    v.setUint8(4, 1);
    v.setUint32(8, h.length, true);
    v.setUint32(12, count, true);
    f.set(h, 16);
    return f;
  };
  rejects(raw({ type: 'launch' }), /unknown message type "launch"/);
  rejects(raw([1, 2]), /must be a MessagePack map/);
  rejects(raw({ ...gradient, samples: -1 }, 3), /gradient.samples must be a non-negative integer/);
  rejects(raw({ ...gradient, labelLoss: '1' }, 3), /gradient.labelLoss must be a number/);
  rejects(
    raw({ type: 'assign', step: 1, shard: 0, epoch: 0, source: [1, 2.5], target: [], lambda: 0, seed: 0 }),
    /assign.source must be an array of non-negative integers/,
  );
  rejects(raw({ type: 'leave', code: 'shutdown' }, 2), /carries no payload/);
  rejects(raw({ type: 'leave', reason: 'the run is finished' }), /leave.code must be one of finished, shutdown/);
  assert.throws(() => encodeFrame(gradient), /needs payload/);
  assert.throws(() => encodeFrame({ type: 'leave', code: 'shutdown' }, new Float32Array(1)), /takes no payload/);
});

test('firstNonFinite finds NaN and Infinity', () => {
  assert.equal(firstNonFinite(Float32Array.of(1, 2, 3)), -1);
  assert.equal(firstNonFinite(Float32Array.of(1, NaN, 3)), 1);
  assert.equal(firstNonFinite(Float32Array.of(1, 2, -Infinity)), 2);
});

test('fuzz: thousands of random and mutated frames never throw anything but ProtocolError', () => {
  let seed = 12345;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const seeds = [
    encodeFrame(gradient, new Float32Array(8)),
    encodeFrame({ type: 'assign', step: 1, shard: 0, epoch: 0, source: [1], target: [2], lambda: 0, seed: 0 }),
  ];
  let accepted = 0;
  for (let i = 0; i < 5000; i++) {
    let bytes: Uint8Array;
    if (i % 3 === 0) bytes = Uint8Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256));
    else {
      bytes = seeds[i % 2].slice();
      for (let k = 0, n = 1 + Math.floor(rand() * 4); k < n; k++)
        bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
      if (rand() < 0.2) bytes = bytes.subarray(0, Math.floor(rand() * bytes.length));
    }
    try {
      const f = decodeFrame(bytes, limits);
      accepted++;
      assert.ok(f.message.type.length > 0);
    } catch (e) {
      assert.ok(e instanceof ProtocolError, `frame ${i}: ${(e as Error).stack}`);
    }
  }
  assert.ok(accepted < 5000);
});
