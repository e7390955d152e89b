/** Reader for the IDX format of the original MNIST files (big-endian header, then raw data). */
export interface IdxArray {
  readonly dims: number[];
  readonly data: Uint8Array;
}

const UBYTE = 0x08;

/**
 * Parses an IDX file holding unsigned bytes. `what` names the file in errors.
 * Rejects a wrong magic number, an unsupported element type, and a length that
 * does not match the header's dimensions (truncated or padded files).
 */
export function parseIdx(buf: Uint8Array, what: string): IdxArray {
  if (buf.length < 4)
    throw new Error(
      `${what}: file is ${buf.length} bytes, too short for an IDX header; the file is truncated or not IDX.`,
    );
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf[0] !== 0 || buf[1] !== 0) {
    const hint = buf[0] === 0x1f && buf[1] === 0x8b ? ' (it is gzip-compressed: gunzip it first)' : '';
    throw new Error(
      `${what}: bad magic number 0x${view.getUint32(0).toString(16).padStart(8, '0')}, not an IDX file${hint}.`,
    );
  }
  if (buf[2] !== UBYTE)
    throw new Error(`${what}: IDX element type 0x${buf[2].toString(16)} is not unsigned byte (0x08).`);
  const rank = buf[3];
  if (rank < 1 || rank > 4) throw new Error(`${what}: IDX rank ${rank} is not between 1 and 4.`);
  const headerBytes = 4 + 4 * rank;
  if (buf.length < headerBytes) throw new Error(`${what}: file is truncated inside its header.`);
  const dims: number[] = [];
  let size = 1;
  for (let i = 0; i < rank; i++) {
    const d = view.getUint32(4 + 4 * i);
    dims.push(d);
    size *= d;
  }
  const actual = buf.length - headerBytes;
  if (actual !== size) {
    const kind = actual < size ? 'truncated' : 'longer than its header says';
    throw new Error(
      `${what}: file is ${kind}: header says ${dims.join('x')} (${size} bytes of data) but it has ${actual}.`,
    );
  }
  return { dims, data: buf.subarray(headerBytes) };
}
