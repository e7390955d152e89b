import * as tf from '@tensorflow/tfjs-core';
import type { Objective } from './objective.ts';

export function accuracy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32'));
}

/** Cross-entropy of the label head on the labelled source rows: every method's first term. */
export const labelCrossEntropy: Objective = {
  name: 'label',
  needsSource: true,
  needsTarget: false,
  groups: ['features', 'label'],
  loss(f) {
    const logits = f.sourceLogits();
    const loss = tf.losses.softmaxCrossEntropy(tf.oneHot(f.sourceLabels, 10), logits) as tf.Scalar;
    return { loss, report: { labelLoss: loss, labelAccuracy: accuracy(logits, f.sourceLabels) } };
  },
};
