import * as tf from '@tensorflow/tfjs-core';
// The umbrella package's Node bundle registers every op's gradient (tfjs-core's own ESM build cannot be deep-imported in Node).
import '@tensorflow/tfjs';
import { createRng, mixSeed } from '@dann/data';
import { featureWidth, paramSpecs, type Architecture, type Layer, type ParamSpec, type Group } from './architecture.ts';
import { gradientReversal } from './grl.ts';

let instances = 0;

/**
 * Inverted-dropout mask (0 or 1/(1-rate)) from the project's seeded generator: the same masks on every
 * backend, and several times faster than tf.dropout's JavaScript random numbers.
 */
function dropoutMask(shape: number[], rate: number, seed: number, rowIds?: Uint32Array): tf.Tensor {
  const keep = 1 - rate,
    scale = 1 / keep;
  const u = new Float32Array(shape.reduce((a, b) => a * b, 1));
  if (!rowIds) {
    createRng(seed).fill(u);
  } else {
    // One generator per sample: its mask does not depend on which batch or shard it is computed in.
    if (rowIds.length !== shape[0]) throw new Error(`dropout: ${rowIds.length} row ids for ${shape[0]} rows.`);
    const per = u.length / shape[0];
    rowIds.forEach((id, r) => createRng(mixSeed(seed, id)).fill(u, r * per, (r + 1) * per));
  }
  for (let i = 0; i < u.length; i++) u[i] = u[i] < keep ? scale : 0;
  return tf.tensor(u, shape);
}

const GROUPS: readonly Group[] = ['features', 'label', 'domain'];

export interface ForwardOptions {
  readonly training: boolean;
  /** Seeds the dropout masks; a step's seed makes its masks reproducible. */
  readonly seed?: number;
  /**
   * One id per batch row (e.g. the sample's dataset index): each row's dropout mask then depends only on
   * (seed, id), so a batch split over trainers draws the same masks as the whole batch on one.
   */
  readonly rowIds?: Uint32Array;
}

/**
 * The DANN network over one flat Float32Array of parameters (layout: `paramSpecs(arch)`).
 * Weights live in tf variables for compute; the flat vector is the exchange format for
 * gradients, updates, checkpoints and the wire.
 */
export class DannNetwork {
  readonly specs: ParamSpec[];
  readonly size: number;
  private readonly vars: tf.Variable[];
  /** Each group's variables in layer order (kernel, bias, ...), for the forward pass. */
  private readonly groupVars: Record<Group, tf.Variable[]>;

  constructor(
    readonly arch: Architecture,
    weights: Float32Array,
  ) {
    this.specs = paramSpecs(arch);
    this.size = this.specs.reduce((a, s) => a + s.size, 0);
    if (weights.length !== this.size)
      throw new Error(`${arch.name} has ${this.size} parameters but the weights hold ${weights.length}.`);
    const id = instances++;
    this.vars = this.specs.map((s) =>
      tf.variable(tf.tensor(weights.subarray(s.offset, s.offset + s.size), s.shape), true, `dann${id}/${s.name}`),
    );
    this.groupVars = { features: [], label: [], domain: [] };
    this.specs.forEach((s, i) => this.groupVars[s.group].push(this.vars[i]));
  }

  /** Glorot-uniform kernels (the Keras default the reference used) and zero biases, from a seed. */
  static initialWeights(arch: Architecture, seed: number): Float32Array {
    const specs = paramSpecs(arch);
    const flat = new Float32Array(specs.reduce((a, s) => a + s.size, 0));
    const rng = createRng(mixSeed(seed, 0x1417));
    for (const s of specs) {
      if (s.kind === 'bias') continue;
      const limit = Math.sqrt(6 / (s.fanIn + s.fanOut));
      for (let i = 0; i < s.size; i++) flat[s.offset + i] = rng.uniform(-limit, limit);
    }
    return flat;
  }

  get variables(): readonly tf.Variable[] {
    return this.vars;
  }

  setWeights(flat: Float32Array): void {
    if (flat.length !== this.size) throw new Error(`expected ${this.size} weights, got ${flat.length}.`);
    tf.tidy(() =>
      this.specs.forEach((s, i) => this.vars[i].assign(tf.tensor(flat.subarray(s.offset, s.offset + s.size), s.shape))),
    );
  }

  async getWeights(): Promise<Float32Array> {
    const flat = new Float32Array(this.size);
    const parts = await Promise.all(this.vars.map((v) => v.data()));
    this.specs.forEach((s, i) => flat.set(parts[i] as Float32Array, s.offset));
    return flat;
  }

  private run(group: Group, layers: readonly Layer[], x: tf.Tensor, o: ForwardOptions): tf.Tensor {
    let v = 0;
    const params = this.groupVars[group];
    layers.forEach((layer, i) => {
      switch (layer.kind) {
        case 'conv': {
          const kernel = params[v++] as tf.Tensor4D,
            bias = params[v++];
          // Fused bias + relu: one XNNPACK call forward, and fewer tensors kept for the backward pass.
          x = tf.fused.conv2d({
            x: x as tf.Tensor4D,
            filter: kernel,
            strides: 1,
            pad: layer.padding,
            bias,
            activation: layer.activation,
          });
          break;
        }
        case 'dense': {
          const kernel = params[v++] as tf.Tensor2D,
            bias = params[v++];
          x = tf.fused.matMul({ a: x as tf.Tensor2D, b: kernel, bias, activation: layer.activation });
          break;
        }
        case 'maxpool':
          x = tf.maxPool(x as tf.Tensor4D, layer.size, layer.stride, 'valid');
          break;
        case 'flatten':
          x = tf.reshape(x, [x.shape[0], -1]);
          break;
        case 'dropout':
          if (o.training && layer.rate > 0)
            x = tf.mul(x, dropoutMask(x.shape, layer.rate, mixSeed(o.seed ?? 0, GROUPS.indexOf(group), i), o.rowIds));
          break;
      }
    });
    return x;
  }

  /** Feature layer for a NHWC batch. */
  features(x: tf.Tensor4D, o: ForwardOptions): tf.Tensor2D {
    const f = this.run('features', this.arch.features, x, o);
    return (f.rank === 2 ? f : tf.reshape(f, [f.shape[0], -1])) as tf.Tensor2D;
  }

  labelLogits(features: tf.Tensor2D, o: ForwardOptions): tf.Tensor2D {
    return this.run('label', this.arch.label, features, o) as tf.Tensor2D;
  }

  /** Domain logits through the gradient reversal layer (-lambda on the way back). */
  domainLogits(features: tf.Tensor2D, lambda: number, o: ForwardOptions): tf.Tensor2D {
    return this.run('domain', this.arch.domain, gradientReversal(features, lambda), o) as tf.Tensor2D;
  }

  /** Class probabilities (n x 10) for preprocessed NHWC images, in batches. */
  predict(images: Float32Array, batchSize = 256): Promise<Float32Array> {
    return this.mapBatches(images, 10, batchSize, (x) =>
      tf.softmax(this.labelLogits(this.features(x, { training: false }), { training: false })),
    );
  }

  /** Feature-layer activations (n x d) for preprocessed NHWC images. */
  embed(images: Float32Array, batchSize = 256): Promise<Float32Array> {
    const d = featureWidth(this.arch);
    return this.mapBatches(images, d, batchSize, (x) => this.features(x, { training: false }));
  }

  /** Reads asynchronously: the webgpu backend cannot read a tensor synchronously in Node. */
  private async mapBatches(
    images: Float32Array,
    width: number,
    batchSize: number,
    fn: (x: tf.Tensor4D) => tf.Tensor,
  ): Promise<Float32Array> {
    const { height: h, width: w, channels: c } = this.arch.input;
    const per = h * w * c;
    const n = images.length / per;
    if (!Number.isInteger(n)) throw new Error(`${images.length} floats do not make whole ${h}x${w}x${c} images.`);
    const out = new Float32Array(n * width);
    for (let start = 0; start < n; start += batchSize) {
      const m = Math.min(batchSize, n - start);
      const y = tf.tidy(() => fn(tf.tensor4d(images.subarray(start * per, (start + m) * per), [m, h, w, c])));
      out.set((await y.data()) as Float32Array, start * width);
      y.dispose();
    }
    return out;
  }

  dispose(): void {
    tf.dispose(this.vars);
  }
}
