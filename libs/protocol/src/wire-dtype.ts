/**
 * Float encodings for tensors on the wire. `f32` is exact; `bf16` keeps f32's range with 8 bits of
 * mantissa; `f16` keeps 11 bits of mantissa but overflows past 65504. Both halve the bytes.
 * Conversions round to nearest even; NaN stays NaN and infinities stay infinite (so a bad gradient
 * is still caught after decoding).
 */
export const WIRE_DTYPES = ['f32', 'bf16', 'f16'] as const;
export type WireDtype = (typeof WIRE_DTYPES)[number];

export const DTYPE_CODE: Record<WireDtype, number> = { f32: 0, bf16: 1, f16: 2 };
export const DTYPE_BYTES: Record<WireDtype, number> = { f32: 4, bf16: 2, f16: 2 };

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f32ToBf16(x: Float32Array, out: Uint16Array): void {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < x.length; i++) {
    const b = bits[i];
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0)
      out[i] = (b >>> 16) | 0x0040; // quiet NaN
    else out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
}

export function bf16ToF32(x: Uint16Array, out: Float32Array): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < x.length; i++) bits[i] = x[i] << 16;
}

export function f32ToF16(x: Float32Array, out: Uint16Array): void {
  for (let i = 0; i < x.length; i++) {
    f32[0] = x[i];
    const b = u32[0];
    const sign = (b >>> 16) & 0x8000;
    const exp = (b >>> 23) & 0xff;
    let mant = b & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00; // overflow: infinity
    } else if (e <= 0) {
      if (e < -10) {
        out[i] = sign; // underflow to zero
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      const half = 1 << (shift - 1);
      const rest = mant & ((1 << shift) - 1);
      let m = mant >>> shift;
      if (rest > half || (rest === half && m & 1)) m++;
      out[i] = sign | m;
    } else {
      let h = sign | (e << 10) | (mant >>> 13);
      const rest = mant & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // may carry into the exponent: still correct
      out[i] = h;
    }
  }
}

let f16Table: Float32Array | null = null;

/** Every half-precision bit pattern's value (256 KiB, built on first use): decoding is one lookup. */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) t[h] = mant ? NaN : sign * Infinity;
    else t[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return (f16Table = t);
}

export function f16ToF32(x: Uint16Array, out: Float32Array): void {
  const t = halfTable();
  for (let i = 0; i < x.length; i++) out[i] = t[x[i]];
}
