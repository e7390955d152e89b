import { createHash } from 'node:crypto';
import onnxProto from 'onnx-proto';
import type { onnx as Onnx } from 'onnx-proto';
import { layerOutput, paramSpecs, type Architecture, type Layer, type ParamSpec } from '@dann/training';

const { onnx } = onnxProto;

/** IR 8 / opset 13: loaded by every current runtime, older ones, and ONNX 1.12's checker. */
export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 13;
export const ONNX_INPUT = 'input';
export const ONNX_OUTPUTS = ['logits', 'probabilities'] as const;

export type Quantization = 'none' | 'int8';

export interface OnnxBuildOptions {
  /** 'int8': weight-only per-output-channel symmetric int8 kernels behind DequantizeLinear; biases stay fp32. */
  readonly quantization?: Quantization;
  /**
   * How the first dense layer after a flatten reads the conv output. 'reorder' (right): its kernel rows are
   * permuted from tfjs's HWC flatten order to ONNX's CHW order. 'none' keeps tfjs's order, a deliberately
   * wrong model that only tests use, to prove the verification catches a scrambled flatten.
   */
  readonly flattenOrder?: 'reorder' | 'none';
  /** String key/values written to metadata_props (also shipped as model.json, since onnxruntime-js cannot read them). */
  readonly metadata?: Readonly<Record<string, string>>;
  readonly docString?: string;
}

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT8 = onnx.TensorProto.DataType.INT8;

function tensor(name: string, dims: number[], data: Float32Array | Int8Array): Onnx.ITensorProto {
  return {
    name,
    dims,
    dataType: data instanceof Float32Array ? FLOAT : INT8,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), // little-endian on every platform Node runs on
  };
}

const ints = (name: string, v: number[]): Onnx.IAttributeProto => ({
  name,
  type: onnx.AttributeProto.AttributeType.INTS,
  ints: v,
});
const int = (name: string, v: number): Onnx.IAttributeProto => ({
  name,
  type: onnx.AttributeProto.AttributeType.INT,
  i: v,
});

/** SHA-256 of the label path's fp32 weights (feature extractor + label head, in parameter order). */
export function labelPathSha256(arch: Architecture, weights: Float32Array): string {
  const specs = paramSpecs(arch).filter((s) => s.group !== 'domain');
  const end = specs.length ? specs[specs.length - 1].offset + specs[specs.length - 1].size : 0;
  const path = weights.subarray(0, end);
  return createHash('sha256')
    .update(new Uint8Array(path.buffer, path.byteOffset, path.byteLength))
    .digest('hex');
}

/** tfjs conv kernel [kh, kw, in, out] (HWIO) -> ONNX [out, in, kh, kw] (OIHW). */
export function hwioToOihw(w: Float32Array, kh: number, kw: number, ci: number, co: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < ci; i++)
        for (let o = 0; o < co; o++) {
          out[((o * ci + i) * kh + y) * kw + x] = w[((y * kw + x) * ci + i) * co + o];
        }
  return out;
}

/** Permutes a dense kernel's rows [h*w*c, units] from HWC (tfjs flatten) to CHW (ONNX Flatten of NCHW) order. */
export function hwcRowsToChw(kernel: Float32Array, h: number, w: number, c: number, units: number): Float32Array {
  const out = new Float32Array(kernel.length);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let ch = 0; ch < c; ch++) {
        const from = ((y * w + x) * c + ch) * units,
          to = ((ch * h + y) * w + x) * units;
        out.set(kernel.subarray(from, from + units), to);
      }
  return out;
}

/**
 * Symmetric per-channel int8: scale = max|w| / 127 over each output channel (axis 0 of OIHW, axis 1 of a
 * [in, out] Gemm kernel), zero point 0.
 */
export function quantizePerChannel(
  w: Float32Array,
  dims: number[],
  axis: number,
): { q: Int8Array; scale: Float32Array } {
  const channels = dims[axis];
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channelOf = (i: number) => Math.floor(i / inner) % channels;
  const max = new Float32Array(channels);
  for (let i = 0; i < w.length; i++) max[channelOf(i)] = Math.max(max[channelOf(i)], Math.abs(w[i]));
  const scale = max.map((m) => (m > 0 ? m / 127 : 1));
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = Math.max(-127, Math.min(127, Math.round(w[i] / scale[channelOf(i)])));
  return { q, scale };
}

/**
 * The label-prediction path (feature extractor + label head; no GRL, no domain head, no dropout) as an ONNX
 * ModelProto. Input `input` [batch, H, W, C] float32 (NHWC, the preprocessing's layout), transposed once to
 * NCHW; outputs `logits` and `probabilities` [batch, 10].
 */
export function buildOnnxModel(arch: Architecture, weights: Float32Array, options: OnnxBuildOptions = {}): Uint8Array {
  const specs = paramSpecs(arch);
  const size = specs.reduce((a, s) => a + s.size, 0);
  if (weights.length !== size)
    throw new Error(`${arch.name} has ${size} parameters but the weights hold ${weights.length}.`);
  if (weights.some((v) => !Number.isFinite(v)))
    throw new Error('the weights contain NaN or infinite values; refusing to export a broken model.');
  const quantize = options.quantization === 'int8';
  const reorder = (options.flattenOrder ?? 'reorder') === 'reorder';
  const nodes: Onnx.INodeProto[] = [];
  const initializers: Onnx.ITensorProto[] = [];
  const bySpec = new Map(specs.map((s) => [s.name, s]));
  const slice = (s: ParamSpec) => weights.subarray(s.offset, s.offset + s.size);
  let current = ONNX_INPUT;
  let n = 0;
  const node = (opType: string, inputs: string[], attribute: Onnx.IAttributeProto[] = [], output = `t${n}`): string => {
    nodes.push({ opType, input: inputs, output: [output], name: `${opType.toLowerCase()}_${n++}`, attribute });
    return output;
  };
  /** A kernel initializer, behind DequantizeLinear when quantizing. */
  const kernel = (name: string, w: Float32Array, dims: number[], channelAxis: number): string => {
    if (!quantize) {
      initializers.push(tensor(name, dims, w));
      return name;
    }
    const { q, scale } = quantizePerChannel(w, dims, channelAxis);
    initializers.push(
      tensor(`${name}_q`, dims, q),
      tensor(`${name}_scale`, [scale.length], scale),
      tensor(`${name}_zero`, [scale.length], new Int8Array(scale.length)),
    );
    return node('DequantizeLinear', [`${name}_q`, `${name}_scale`, `${name}_zero`], [int('axis', channelAxis)], name);
  };

  current = node('Transpose', [current], [ints('perm', [0, 3, 1, 2])]);
  let shape = [arch.input.height, arch.input.width, arch.input.channels];
  let flattenedFrom: number[] | undefined;
  const walk = (group: 'features' | 'label', layers: readonly Layer[]) => {
    layers.forEach((layer, i) => {
      const prefix = `${group}/${i}_${layer.kind}`;
      switch (layer.kind) {
        case 'conv': {
          const k = layer.kernel,
            ci = shape[2],
            co = layer.filters;
          const w = kernel(
            `${prefix}/kernel`,
            hwioToOihw(slice(bySpec.get(`${prefix}/kernel`)!), k, k, ci, co),
            [co, ci, k, k],
            0,
          );
          initializers.push(tensor(`${prefix}/bias`, [co], slice(bySpec.get(`${prefix}/bias`)!)));
          // tfjs 'same' (stride 1) pads k-1 in total, the odd one at the end; ONNX wants [top, left, bottom, right].
          const before = layer.padding === 'same' ? Math.floor((k - 1) / 2) : 0;
          const after = layer.padding === 'same' ? k - 1 - before : 0;
          current = node(
            'Conv',
            [current, w, `${prefix}/bias`],
            [
              ints('kernel_shape', [k, k]),
              ints('strides', [1, 1]),
              ints('pads', [before, before, after, after]),
              ints('dilations', [1, 1]),
            ],
          );
          if (layer.activation === 'relu') current = node('Relu', [current]);
          break;
        }
        case 'maxpool':
          // tfjs pools 'valid' with strides defaulting to the size; ONNX's default stride is 1: always write it.
          current = node(
            'MaxPool',
            [current],
            [
              ints('kernel_shape', [layer.size, layer.size]),
              ints('strides', [layer.stride, layer.stride]),
              ints('pads', [0, 0, 0, 0]),
            ],
          );
          break;
        case 'flatten':
          flattenedFrom = shape;
          current = node('Flatten', [current], [int('axis', 1)]);
          break;
        case 'dense': {
          const spec = bySpec.get(`${prefix}/kernel`)!;
          const [inputs, units] = spec.shape;
          let w = slice(spec);
          if (flattenedFrom && reorder)
            w = hwcRowsToChw(w, flattenedFrom[0], flattenedFrom[1], flattenedFrom[2], units);
          flattenedFrom = undefined;
          const b = kernel(`${prefix}/kernel`, w, [inputs, units], 1);
          initializers.push(tensor(`${prefix}/bias`, [units], slice(bySpec.get(`${prefix}/bias`)!)));
          current = node('Gemm', [current, b, `${prefix}/bias`]);
          if (layer.activation === 'relu') current = node('Relu', [current]);
          break;
        }
        case 'dropout':
          break; // inference: identity
      }
      shape = layerOutput(layer, shape);
    });
  };
  walk('features', arch.features);
  if (shape.length !== 1) {
    flattenedFrom = shape;
    current = node('Flatten', [current], [int('axis', 1)]);
    shape = [shape.reduce((a, b) => a * b, 1)];
  }
  walk('label', arch.label);
  nodes[nodes.length - 1].output = [ONNX_OUTPUTS[0]];
  node('Softmax', [ONNX_OUTPUTS[0]], [int('axis', 1)], ONNX_OUTPUTS[1]);

  const batch = { dimParam: 'batch' };
  const valueInfo = (name: string, dims: Onnx.TensorShapeProto.IDimension[]): Onnx.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims } } },
  });
  const model: Onnx.IModelProto = {
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'dann-edge',
    producerVersion: '0.1.0',
    docString: options.docString ?? `${arch.name}: label-prediction path of a DANN digit classifier`,
    graph: {
      name: `dann_${arch.name.replace(/\W/g, '_')}`,
      node: nodes,
      initializer: initializers,
      input: [
        valueInfo(ONNX_INPUT, [
          batch,
          { dimValue: arch.input.height },
          { dimValue: arch.input.width },
          { dimValue: arch.input.channels },
        ]),
      ],
      output: ONNX_OUTPUTS.map((name) => valueInfo(name, [batch, { dimValue: 10 }])),
    },
    metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
  };
  return onnx.ModelProto.encode(onnx.ModelProto.fromObject(model)).finish();
}

/** Reads a model back (tests and tools): node types in order, metadata, initializer byte count. */
export function describeOnnxModel(bytes: Uint8Array): {
  opTypes: string[];
  metadata: Record<string, string>;
  opset: number;
  irVersion: number;
  initializerBytes: number;
} {
  let m: Onnx.ModelProto;
  try {
    m = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`not an ONNX model: ${(e as Error).message}.`);
  }
  return {
    opTypes: (m.graph?.node ?? []).map((x) => x.opType ?? ''),
    metadata: Object.fromEntries(m.metadataProps.map((p) => [p.key, p.value])),
    opset: Number(m.opsetImport[0]?.version ?? 0),
    irVersion: Number(m.irVersion),
    initializerBytes: (m.graph?.initializer ?? []).reduce((a, t) => a + (t.rawData?.length ?? 0), 0),
  };
}
