import { deflateSync } from 'node:zlib';
import { MAT_CLASS_CODE, MAT_TYPE, type MatClass } from '../mat.ts';

/** A minimal Level 5 MAT-file writer, used by tests to make small files in the official SVHN layout. */
export interface MatVariable {
  name: string;
  className: MatClass;
  dims: number[];
  /** Stored values (column-major) and the MAT storage type they are written with. */
  storage: 'uint8' | 'double';
  values: ArrayLike<number>;
}

function element(type: number, data: Uint8Array, pad = true): Buffer {
  if (data.length <= 4 && pad) {
    const small = Buffer.alloc(8);
    small.writeUInt32LE(((data.length << 16) | type) >>> 0, 0);
    Buffer.from(data).copy(small, 4);
    return small;
  }
  const tag = Buffer.alloc(8);
  tag.writeUInt32LE(type, 0);
  tag.writeUInt32LE(data.length, 4);
  const padding = pad ? (8 - (data.length % 8)) % 8 : 0;
  return Buffer.concat([tag, data, Buffer.alloc(padding)]);
}

function matrix(v: MatVariable): Buffer {
  const flags = Buffer.alloc(8);
  flags.writeUInt32LE(MAT_CLASS_CODE[v.className], 0);
  const dims = Buffer.alloc(4 * v.dims.length);
  v.dims.forEach((d, i) => dims.writeInt32LE(d, 4 * i));
  const values =
    v.storage === 'uint8' ? Buffer.from(Uint8Array.from(v.values)) : Buffer.from(Float64Array.from(v.values).buffer);
  const body = Buffer.concat([
    element(MAT_TYPE.UINT32, flags),
    element(MAT_TYPE.INT32, dims),
    element(MAT_TYPE.INT8, Buffer.from(v.name, 'latin1')),
    element(v.storage === 'uint8' ? MAT_TYPE.UINT8 : MAT_TYPE.DOUBLE, values),
  ]);
  return element(MAT_TYPE.MATRIX, body);
}

export function writeMat(vars: MatVariable[], compress: boolean): Buffer {
  const header = Buffer.alloc(128, 0x20);
  header.write('MATLAB 5.0 MAT-file, written by the dann-edge tests', 0, 'latin1');
  header.fill(0, 116, 124);
  header.writeUInt16LE(0x0100, 124);
  header.write('IM', 126, 'latin1');
  const parts = vars.map((v) => (compress ? element(MAT_TYPE.COMPRESSED, deflateSync(matrix(v)), false) : matrix(v)));
  return Buffer.concat([header, ...parts]);
}
