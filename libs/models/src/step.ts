import * as tf from '@tensorflow/tfjs-core';
import type { DannNetwork } from './network.ts';
import { stopGradient } from './grl.ts';

export const METHODS = ['source-only', 'dann'] as const;
export type Method = (typeof METHODS)[number];

/**
 * How DANN's feature extractor plays against the domain head (the head itself always minimises the
 * domain cross-entropy):
 * - `grl`: gradient reversal (Ganin et al.): the features get -λ x the domain loss's gradient. It vanishes
 *   once the head is confident and right, so a head that wins outright stops the adaptation.
 * - `flip`: the features minimise λ x the cross-entropy against the flipped domain labels (the GAN /
 *   ADDA "inverted label" loss), with the head held fixed: its gradient is largest exactly when the head wins.
 * - `confusion`: the features minimise λ x the cross-entropy against the uniform distribution (Tzeng et
 *   al. 2015): pushes the head's output to 0.5 from either side and is zero there.
 */
export const ADVERSARIAL = ['grl', 'flip', 'confusion'] as const;
export type Adversarial = (typeof ADVERSARIAL)[number];

/** One step's data: preprocessed NHWC images as flat floats. */
export interface StepBatch {
  readonly source: Float32Array;
  readonly sourceLabels: Uint8Array;
  /** Unlabelled target images; required for dann, ignored by source-only. */
  readonly target?: Float32Array;
  /**
   * Dataset indices of the source and target rows: when given, each sample's dropout mask depends only on
   * (step seed, domain, index), so a step's gradient does not depend on how its batch is sharded.
   */
  readonly ids?: { readonly source: ArrayLike<number>; readonly target?: ArrayLike<number> };
}

export interface StepOptions {
  readonly method: Method;
  /** Weight of the adversarial term for the features (the GRL weight for `grl`) at this step. */
  readonly lambda: number;
  /** The feature extractor's adversarial objective; `grl` when absent. */
  readonly adversarial?: Adversarial;
  /** Weight of the domain loss in the total (1 in the paper). */
  readonly domainWeight?: number;
  /**
   * dann only: weight of the mean entropy of the label head's predictions on the target batch (conditional
   * entropy minimisation, Grandvalet & Bengio 2005; as in VADA, Shu et al. 2018): pushes target samples
   * away from the class boundaries. 0 or absent: off.
   */
  readonly targetEntropy?: number;
  /** Seeds this step's dropout masks. */
  readonly seed: number;
}

export interface StepResult {
  /** Gradient of the mean loss over this batch w.r.t. every parameter, in the flat layout. */
  readonly gradient: Float32Array;
  /** Source samples in the batch: the weight of this gradient in a distributed average. */
  readonly samples: number;
  readonly labelLoss: number;
  /** NaN for source-only. */
  readonly domainLoss: number;
  readonly labelAccuracy: number;
  /** Accuracy of the domain classifier on source+target (0.5 = features indistinguishable). NaN for source-only. */
  readonly domainAccuracy: number;
}

function accuracy(logits: tf.Tensor2D, labels: tf.Tensor1D): number {
  return tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32')).dataSync()[0]);
}

/**
 * Computes the loss parts and the flat gradient for one batch, without changing the weights.
 * `dann`: label cross-entropy on source + domainWeight x domain cross-entropy on source (0) and
 * target (1) features through the gradient reversal layer. `source-only`: label cross-entropy only.
 * With `adversarial` flip or confusion the head is trained on the features as constants, and a second
 * pass of the head (its weights as constants) gives the features domainWeight x λ x the adversarial loss.
 */
export function computeGradient(net: DannNetwork, batch: StepBatch, o: StepOptions): StepResult {
  const { height: h, width: w, channels: c } = net.arch.input;
  const per = h * w * c;
  const ns = batch.sourceLabels.length;
  if (ns < 1) throw new Error('a step needs at least one source sample.');
  if (batch.source.length !== ns * per)
    throw new Error(`source batch holds ${batch.source.length} floats, expected ${ns} x ${per}.`);
  const dann = o.method === 'dann';
  const nt = dann ? (batch.target?.length ?? 0) / per : 0;
  if (dann && (!Number.isInteger(nt) || nt < 1))
    throw new Error(`dann needs a target batch of whole ${h}x${w}x${c} images.`);
  const domainWeight = o.domainWeight ?? 1;
  const adversarial = o.adversarial ?? 'grl';
  let rowIds: Uint32Array | undefined;
  if (batch.ids) {
    if (batch.ids.source.length !== ns || (dann && batch.ids.target?.length !== nt))
      throw new Error('batch ids must match the source and target rows.');
    rowIds = new Uint32Array(ns + nt);
    rowIds.set(batch.ids.source);
    for (let i = 0; i < nt; i++) rowIds[ns + i] = (batch.ids.target![i] | 0x80000000) >>> 0; // target ids apart from source ids
  }
  const fo = { training: true, seed: o.seed, rowIds };
  const sourceFo = { ...fo, rowIds: rowIds?.subarray(0, ns) };

  const kept: tf.Tensor[] = [];
  const labels = tf.tensor1d(batch.sourceLabels, 'int32');
  const domainLabels = dann
    ? tf.tidy(() => tf.concat([tf.zeros([ns], 'int32'), tf.ones([nt], 'int32')]) as tf.Tensor1D)
    : null;
  let labelLogits!: tf.Tensor2D;
  let domainLogits: tf.Tensor2D | null = null;
  let labelLoss!: tf.Scalar;
  let domainLoss: tf.Scalar | null = null;
  const { grads, value } = tf.variableGrads(() => {
    const xs = tf.tensor4d(batch.source, [ns, h, w, c]);
    const x = dann ? tf.concat([xs, tf.tensor4d(batch.target!, [nt, h, w, c])]) : xs;
    const features = net.features(x, fo);
    const srcFeatures = dann ? tf.slice(features, [0, 0], [ns, -1]) : features;
    labelLogits = tf.keep(net.labelLogits(srcFeatures, sourceFo));
    labelLoss = tf.keep(tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 10), labelLogits) as tf.Scalar);
    kept.push(labelLogits, labelLoss);
    if (!dann) return labelLoss;
    const domainTargets = tf.oneHot(domainLabels!, 2);
    // The label head on the target rows, computed once for whichever terms need it.
    let targetLogits: tf.Tensor2D | undefined;
    const targetLabelLogits = () =>
      (targetLogits ??= net.labelLogits(tf.slice(features, [ns, 0], [nt, -1]), {
        ...fo,
        rowIds: rowIds?.subarray(ns),
      }));
    // A conditional (CDAN) head also reads the class probabilities of every row, source and target.
    const probs = net.arch.conditional
      ? (tf.softmax(tf.concat([labelLogits, targetLabelLogits()])) as tf.Tensor2D)
      : undefined;
    domainLogits = tf.keep(
      adversarial === 'grl'
        ? net.domainLogits(features, o.lambda, fo, probs)
        : net.domainHead(stopGradient(features), fo, false, probs),
    );
    domainLoss = tf.keep(tf.losses.softmaxCrossEntropy(domainTargets, domainLogits) as tf.Scalar);
    kept.push(domainLogits, domainLoss);
    let total = tf.add(labelLoss, tf.mul(domainLoss, domainWeight)) as tf.Scalar;
    const entropyWeight = o.targetEntropy ?? 0;
    if (entropyWeight > 0) {
      const logits = targetLabelLogits();
      const entropy = tf.neg(tf.mean(tf.sum(tf.mul(tf.softmax(logits), tf.logSoftmax(logits)), 1)));
      total = tf.add(total, tf.mul(entropy, entropyWeight)) as tf.Scalar;
    }
    if (adversarial === 'grl' || o.lambda === 0) return total;
    const fooled = net.domainHead(features, fo, true, probs);
    const wanted = adversarial === 'flip' ? tf.sub(1, domainTargets) : tf.fill([ns + nt, 2], 0.5);
    const adversarialLoss = tf.losses.softmaxCrossEntropy(wanted, fooled) as tf.Scalar;
    return tf.add(total, tf.mul(adversarialLoss, domainWeight * o.lambda)) as tf.Scalar;
  }, net.variables as tf.Variable[]);

  const gradient = new Float32Array(net.size);
  net.specs.forEach((s, i) => {
    const g = grads[net.variables[i].name];
    if (g) gradient.set(g.dataSync() as Float32Array, s.offset); // domain head has no gradient in source-only
  });
  const result: StepResult = {
    gradient,
    samples: ns,
    labelLoss: labelLoss.dataSync()[0],
    domainLoss: domainLoss ? (domainLoss as tf.Scalar).dataSync()[0] : NaN,
    labelAccuracy: accuracy(labelLogits, labels),
    domainAccuracy: domainLogits ? accuracy(domainLogits, domainLabels!) : NaN,
  };
  tf.dispose([...Object.values(grads), value, labels, ...kept, ...(domainLabels ? [domainLabels] : [])]);
  return result;
}
