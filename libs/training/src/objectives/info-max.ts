import * as tf from '@tensorflow/tfjs-core';
import { meanEntropy } from './entropy.ts';
import type { Objective } from './objective.ts';

/**
 * Information maximisation on the target rows (SHOT, Liang et al. 2020), times `weight`: the mean entropy of
 * each image's prediction (confident predictions) minus the entropy of the batch's mean prediction (diverse
 * ones: the class-balance prior that keeps everything from collapsing onto a few classes). The diversity part
 * is over the batch a trainer computes, so with several trainers it is over each one's shard.
 */
export function infoMax(weight: number): Objective {
  return {
    name: 'info-max',
    needsSource: false,
    needsTarget: true,
    groups: ['features', 'label'],
    loss(f) {
      const logits = f.targetLogits();
      const mean = tf.mean(tf.softmax(logits), 0);
      const diversity = tf.neg(tf.sum(tf.mul(mean, tf.log(tf.add(mean, 1e-6)))));
      return { loss: tf.mul(tf.sub(meanEntropy(logits), diversity), weight) };
    },
  };
}
