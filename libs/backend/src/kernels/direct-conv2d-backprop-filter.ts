import type { TensorInfo } from '@tensorflow/tfjs-core';

/**
 * dW of a stride-1 convolution as a small hand-written WebAssembly SIMD kernel working in tfjs's own wasm
 * memory (no copies):
 *
 *   dW[ky, kx, ci, co] += x[n, oy + ky - top, ox + kx - left, ci] * dy[n, oy, ox, co]
 *
 * The output (KH·KW·Ci x Co, a few KB to a few hundred KB) stays in cache while the reduction over
 * (n, oy, ox) streams x and dy once per (ky, kx) row: for each input row the valid ox range is computed
 * once (padding is skipped, never multiplied), and 4 input channels x 8 output channels accumulate in
 * eight f32x4 registers over the row. XNNPACK's general convolution, the alternative, treats this as a
 * GEMM with a huge reduction and repacks the whole dy as its filter on every call: 2-5x slower here.
 * Output channels must be a multiple of 8; input channels are any (a 1-row tail loop).
 */
export const DIRECT_DW_CO_MULTIPLE = 8;

/** The kernel's WebAssembly text (generated so the 4-row and 1-row tiles share one template). */
export function directDwWat(): string {
  const g = (n: string) => `(local.get $${n})`;
  const set = (n: string, v: string) => `(local.set $${n} ${v})`;
  const acc = (rows: number) => {
    const rs = Array.from({ length: rows }, (_, r) => r);
    return `
      ${set('pw0', `(i32.add ${g('wbase')} (i32.shl (i32.add (i32.mul ${g('ci')} ${g('Co')}) ${g('co')}) (i32.const 2)))`)}
      ${rs
        .slice(1)
        .map((r) => set(`pw${r}`, `(i32.add ${g(`pw${r - 1}`)} ${g('ds')})`))
        .join('\n')}
      ${rs.map((r) => `${set(`c${r}0`, `(v128.load ${g(`pw${r}`)})`)} ${set(`c${r}1`, `(v128.load offset=16 ${g(`pw${r}`)})`)}`).join('\n')}
      ${set('px', `(i32.add ${g('xrow')} (i32.shl ${g('ci')} (i32.const 2)))`)}
      ${set('pd', `(i32.add ${g('dyrow')} (i32.shl ${g('co')} (i32.const 2)))`)}
      ${set('k', g('cnt'))}
      (loop $inner${rows}
        ${set('b0', `(v128.load ${g('pd')})`)}
        ${set('b1', `(v128.load offset=16 ${g('pd')})`)}
        ${rs
          .map(
            (r) => `${set('a', `(v128.load32_splat offset=${r * 4} ${g('px')})`)}
        ${set(`c${r}0`, `(f32x4.add ${g(`c${r}0`)} (f32x4.mul ${g('a')} ${g('b0')}))`)}
        ${set(`c${r}1`, `(f32x4.add ${g(`c${r}1`)} (f32x4.mul ${g('a')} ${g('b1')}))`)}`,
          )
          .join('\n')}
        ${set('px', `(i32.add ${g('px')} ${g('xs')})`)}
        ${set('pd', `(i32.add ${g('pd')} ${g('ds')})`)}
        (br_if $inner${rows} (local.tee $k (i32.sub ${g('k')} (i32.const 1)))))
      ${rs.map((r) => `(v128.store ${g(`pw${r}`)} ${g(`c${r}0`)}) (v128.store offset=16 ${g(`pw${r}`)} ${g(`c${r}1`)})`).join('\n')}`;
  };
  const tiles = (rows: number, cond: string) => `
    (block $done_ci${rows} (loop $loop_ci${rows}
      (br_if $done_ci${rows} ${cond})
      ${set('co', '(i32.const 0)')}
      (block $done_co${rows} (loop $loop_co${rows}
        (br_if $done_co${rows} (i32.ge_s ${g('co')} ${g('Co')}))
        ${acc(rows)}
        ${set('co', `(i32.add ${g('co')} (i32.const 8))`)}
        (br $loop_co${rows})))
      ${set('ci', `(i32.add ${g('ci')} (i32.const ${rows}))`)}
      (br $loop_ci${rows})))`;
  const loop = (name: string, v: string, limit: string, body: string) => `
    ${set(v, '(i32.const 0)')}
    (block $done_${name} (loop $loop_${name}
      (br_if $done_${name} (i32.ge_s ${g(v)} ${limit}))
      ${body}
      ${set(v, `(i32.add ${g(v)} (i32.const 1))`)}
      (br $loop_${name})))`;
  const locals = [
    'n',
    'oy',
    'ky',
    'kx',
    'iy',
    'ox0',
    'ox1',
    'cnt',
    'xrow',
    'dyrow',
    'wbase',
    'ci',
    'co',
    'px',
    'pd',
    'k',
    'pw0',
    'pw1',
    'pw2',
    'pw3',
    'xs',
    'ds',
  ];
  const vlocals = ['a', 'b0', 'b1', 'c00', 'c01', 'c10', 'c11', 'c20', 'c21', 'c30', 'c31'];
  const body = loop(
    'n',
    'n',
    g('N'),
    loop(
      'oy',
      'oy',
      g('OH'),
      loop(
        'ky',
        'ky',
        g('KH'),
        `
    ${set('iy', `(i32.sub (i32.add ${g('oy')} ${g('ky')}) ${g('padT')})`)}
    (if (i32.and (i32.ge_s ${g('iy')} (i32.const 0)) (i32.lt_s ${g('iy')} ${g('H')})) (then
      ${loop(
        'kx',
        'kx',
        g('KW'),
        `
        ${set('ox0', `(i32.sub ${g('padL')} ${g('kx')})`)}
        (if (i32.lt_s ${g('ox0')} (i32.const 0)) (then ${set('ox0', '(i32.const 0)')}))
        ${set('ox1', `(i32.sub (i32.add ${g('W')} ${g('padL')}) ${g('kx')})`)}
        (if (i32.gt_s ${g('ox1')} ${g('OW')}) (then ${set('ox1', g('OW'))}))
        ${set('cnt', `(i32.sub ${g('ox1')} ${g('ox0')})`)}
        (if (i32.gt_s ${g('cnt')} (i32.const 0)) (then
          ${set('xrow', `(i32.add ${g('x')} (i32.mul (i32.add (i32.mul (i32.add (i32.mul ${g('n')} ${g('H')}) ${g('iy')}) ${g('W')}) (i32.sub (i32.add ${g('ox0')} ${g('kx')}) ${g('padL')})) ${g('xs')}))`)}
          ${set('dyrow', `(i32.add ${g('dy')} (i32.mul (i32.add (i32.mul (i32.add (i32.mul ${g('n')} ${g('OH')}) ${g('oy')}) ${g('OW')}) ${g('ox0')}) ${g('ds')}))`)}
          ${set('wbase', `(i32.add ${g('out')} (i32.mul (i32.mul (i32.add (i32.mul ${g('ky')} ${g('KW')}) ${g('kx')}) ${g('Ci')}) ${g('ds')}))`)}
          ${set('ci', '(i32.const 0)')}
          ${tiles(4, `(i32.gt_s (i32.add ${g('ci')} (i32.const 4)) ${g('Ci')})`)}
          ${tiles(1, `(i32.ge_s ${g('ci')} ${g('Ci')})`)}))`,
      )}))`,
      ),
    ),
  );
  return `(module
  (import "env" "memory" (memory 1))
  (func (export "dw") ${['x', 'dy', 'out', 'N', 'H', 'W', 'Ci', 'OH', 'OW', 'Co', 'KH', 'KW', 'padT', 'padL'].map((p) => `(param $${p} i32)`).join(' ')}
    ${locals.map((l) => `(local $${l} i32)`).join(' ')} ${vlocals.map((l) => `(local $${l} v128)`).join(' ')}
    ${set('xs', `(i32.shl ${g('Ci')} (i32.const 2))`)}
    ${set('ds', `(i32.shl ${g('Co')} (i32.const 2))`)}
    ${body}))`;
}

type DwFunction = (
  x: number,
  dy: number,
  out: number,
  N: number,
  H: number,
  W: number,
  Ci: number,
  OH: number,
  OW: number,
  Co: number,
  KH: number,
  KW: number,
  top: number,
  left: number,
) => void;

let compiled: WebAssembly.Module | undefined;
const instances = new WeakMap<WebAssembly.Memory, DwFunction>();

/** Assembles the kernel (wabt, once per process); must finish before the kernel runs. */
export async function compileDirectDw(): Promise<void> {
  if (compiled) return;
  const { default: wabtInit } = await import('wabt');
  const wabt = await wabtInit();
  const module = wabt.parseWat('direct-conv2d-backprop-filter.wat', directDwWat(), { simd: true });
  try {
    compiled = new WebAssembly.Module(new Uint8Array(module.toBinary({}).buffer));
  } finally {
    module.destroy();
  }
}

/** The part of tfjs's wasm backend the kernel touches: its Emscripten module's memory. */
interface WasmBackend {
  wasm: { asm: { memory: WebAssembly.Memory } };
}

/**
 * Runs the kernel on tensors of the wasm backend. `out` must be zero-filled [KH, KW, Ci, Co]; offsets are the
 * tensors' byte offsets on the wasm heap.
 */
export function runDirectDw(
  backend: unknown,
  offsets: { x: number; dy: number; out: number },
  x: TensorInfo,
  dy: TensorInfo,
  KH: number,
  KW: number,
  top: number,
  left: number,
): void {
  if (!compiled)
    throw new Error(
      'the direct Conv2DBackpropFilter kernel was not compiled: await registerWasmTrainingKernels() first.',
    );
  const memory = (backend as WasmBackend).wasm.asm.memory;
  let dw = instances.get(memory);
  if (!dw) {
    dw = new WebAssembly.Instance(compiled, { env: { memory } }).exports.dw as DwFunction;
    instances.set(memory, dw);
  }
  const [N, H, W, Ci] = x.shape;
  const [, OH, OW, Co] = dy.shape;
  dw(offsets.x, offsets.dy, offsets.out, N, H, W, Ci, OH, OW, Co, KH, KW, top, left);
}
