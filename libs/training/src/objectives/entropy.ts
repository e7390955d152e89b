import * as tf from '@tensorflow/tfjs-core';
import type { Objective } from './objective.ts';

/** Mean entropy of the predictions (n x 10 logits): low when each one is confident. */
export function meanEntropy(logits: tf.Tensor2D): tf.Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(tf.softmax(logits), tf.logSoftmax(logits)), 1))) as tf.Scalar;
}

/**
 * Conditional entropy of the label head's predictions on the target rows (Grandvalet & Bengio 2005; VADA,
 * Shu et al. 2018), times `weight`: pushes target samples away from the class boundaries.
 */
export function targetEntropy(weight: number): Objective {
  return {
    name: 'target-entropy',
    needsSource: false,
    needsTarget: true,
    groups: ['features', 'label'],
    loss(f) {
      return { loss: tf.mul(meanEntropy(f.targetLogits()), weight) };
    },
  };
}
