import * as tf from '@tensorflow/tfjs-core';
import type { Objective } from './objective.ts';

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
      const logits = f.targetLogits();
      const entropy = tf.neg(tf.mean(tf.sum(tf.mul(tf.softmax(logits), tf.logSoftmax(logits)), 1)));
      return { loss: tf.mul(entropy, weight) };
    },
  };
}
