import { inflateSync } from 'node:zlib';

/** Reader for MATLAB Level 5 MAT-files (the format of the SVHN cropped-digit files). */

export type MatClass =
  | 'double'
  | 'single'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64';
export type MatData =
  | Float64Array
  | Float32Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** A numeric array; data is column-major (MATLAB order), as stored. */
export interface MatArray {
  readonly name: string;
  readonly className: MatClass;
  readonly dims: number[];
  readonly data: MatData;
}

const MI = {
  INT8: 1,
  UINT8: 2,
  INT16: 3,
  UINT16: 4,
  INT32: 5,
  UINT32: 6,
  SINGLE: 7,
  DOUBLE: 9,
  INT64: 12,
  UINT64: 13,
  MATRIX: 14,
  COMPRESSED: 15,
} as const;

const CLASS_BY_CODE: Record<number, MatClass> = {
  6: 'double',
  7: 'single',
  8: 'int8',
  9: 'uint8',
  10: 'int16',
  11: 'uint16',
  12: 'int32',
  13: 'uint32',
  14: 'int64',
  15: 'uint64',
};
const CLASS_CODE: Record<MatClass, number> = Object.fromEntries(
  Object.entries(CLASS_BY_CODE).map(([k, v]) => [v, Number(k)]),
) as Record<MatClass, number>;
export { CLASS_CODE as MAT_CLASS_CODE, MI as MAT_TYPE };

type Ctor = { new (n: number): MatData; BYTES_PER_ELEMENT: number };
const STORAGE: Record<number, Ctor> = {
  [MI.INT8]: Int8Array,
  [MI.UINT8]: Uint8Array,
  [MI.INT16]: Int16Array,
  [MI.UINT16]: Uint16Array,
  [MI.INT32]: Int32Array,
  [MI.UINT32]: Uint32Array,
  [MI.SINGLE]: Float32Array,
  [MI.DOUBLE]: Float64Array,
  [MI.INT64]: BigInt64Array,
  [MI.UINT64]: BigUint64Array,
};
const CLASS_ARRAY: Record<MatClass, Ctor> = {
  double: Float64Array,
  single: Float32Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
};

interface Element {
  type: number;
  data: Uint8Array;
  next: number;
}

function readElement(buf: Uint8Array, pos: number, what: string): Element {
  if (pos + 8 > buf.length) throw new Error(`${what}: file is truncated inside a data element tag at byte ${pos}.`);
  const view = new DataView(buf.buffer, buf.byteOffset + pos, 8);
  const first = view.getUint32(0, true);
  if (first >>> 16 !== 0) {
    // Small data element: type and size share the first word, data sits in the second.
    const nbytes = first >>> 16;
    if (nbytes > 4) throw new Error(`${what}: corrupt small data element at byte ${pos} (${nbytes} bytes > 4).`);
    return { type: first & 0xffff, data: buf.subarray(pos + 4, pos + 4 + nbytes), next: pos + 8 };
  }
  const nbytes = view.getUint32(4, true);
  const end = pos + 8 + nbytes;
  if (end > buf.length)
    throw new Error(
      `${what}: file is truncated: a data element at byte ${pos} needs ${nbytes} bytes, only ${buf.length - pos - 8} remain.`,
    );
  const next = first === MI.COMPRESSED ? end : pos + 8 + Math.ceil(nbytes / 8) * 8;
  return { type: first, data: buf.subarray(pos + 8, end), next };
}

function toTyped(el: Element, what: string): MatData {
  const Storage = STORAGE[el.type];
  if (!Storage) throw new Error(`${what}: unsupported numeric storage type ${el.type}.`);
  if (el.data.length % Storage.BYTES_PER_ELEMENT !== 0)
    throw new Error(`${what}: ${el.data.length} bytes is not a whole number of elements of type ${el.type}.`);
  const out = new Storage(el.data.length / Storage.BYTES_PER_ELEMENT);
  new Uint8Array(out.buffer).set(el.data); // copy: the source may be unaligned
  return out;
}

function convert(src: MatData, className: MatClass): MatData {
  const Target = CLASS_ARRAY[className];
  if (src instanceof Target) return src;
  const out = new Target(src.length);
  const bigTarget = out instanceof BigInt64Array || out instanceof BigUint64Array;
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    (out as unknown as (number | bigint)[])[i] = bigTarget ? BigInt(v) : Number(v);
  }
  return out;
}

function readMatrix(body: Uint8Array, what: string): MatArray | null {
  if (body.length === 0) return null;
  const flags = readElement(body, 0, what);
  if (flags.type !== MI.UINT32 || flags.data.length !== 8) throw new Error(`${what}: array flags are malformed.`);
  const flagWord = new DataView(flags.data.buffer, flags.data.byteOffset, 8).getUint32(0, true);
  const className = CLASS_BY_CODE[flagWord & 0xff];
  if (!className) return null; // cell, struct, char, sparse, object: not numeric, skipped
  if (flagWord & 0x0800) throw new Error(`${what}: complex arrays are not supported.`);
  const dimsEl = readElement(body, flags.next, what);
  if (dimsEl.type !== MI.INT32) throw new Error(`${what}: dimensions element is malformed.`);
  const dims = Array.from(toTyped(dimsEl, what) as Int32Array);
  const nameEl = readElement(body, dimsEl.next, what);
  const name = new TextDecoder('latin1').decode(nameEl.data);
  const real = readElement(body, nameEl.next, `${what} variable "${name}"`);
  const data = convert(toTyped(real, `${what} variable "${name}"`), className);
  const expected = dims.reduce((a, b) => a * b, 1);
  if (data.length !== expected)
    throw new Error(
      `${what}: variable "${name}" has ${data.length} elements but dimensions ${dims.join('x')} need ${expected}.`,
    );
  return { name, className, dims, data };
}

/** Parses every numeric variable of a Level 5 MAT-file; non-numeric variables are skipped. */
export function readMat(buf: Uint8Array, what = 'MAT-file'): Map<string, MatArray> {
  if (buf.length < 128)
    throw new Error(
      `${what}: ${buf.length} bytes is too short for a MAT-file header; the file is truncated or not a MAT-file.`,
    );
  const text = new TextDecoder('latin1').decode(buf.subarray(0, 116));
  if (!text.startsWith('MATLAB'))
    throw new Error(`${what}: not a MATLAB MAT-file (header does not start with "MATLAB").`);
  if (text.startsWith('MATLAB 7.3'))
    throw new Error(`${what}: MAT-file v7.3 (HDF5) is not supported; save it with -v7 or -v6.`);
  const endian = String.fromCharCode(buf[126], buf[127]);
  if (endian === 'MI') throw new Error(`${what}: big-endian MAT-files are not supported.`);
  if (endian !== 'IM') throw new Error(`${what}: bad endian indicator "${endian}" in the header.`);
  const vars = new Map<string, MatArray>();
  let pos = 128;
  while (pos < buf.length) {
    let el = readElement(buf, pos, what);
    pos = el.next;
    if (el.type === MI.COMPRESSED) {
      let inflated: Uint8Array;
      try {
        inflated = inflateSync(el.data);
      } catch (err) {
        throw new Error(
          `${what}: a compressed variable does not decompress (${(err as Error).message}); the file is corrupt or truncated.`,
        );
      }
      el = readElement(inflated, 0, what);
    }
    if (el.type !== MI.MATRIX) continue;
    const arr = readMatrix(el.data, what);
    if (arr) vars.set(arr.name, arr);
  }
  return vars;
}
