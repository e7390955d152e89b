import * as tf from '@tensorflow/tfjs-core';
import type { Objective } from './objective.ts';

/**
 * Self-ensembling's consistency term (French et al. 2018), times `weight`: on each target row, the squared
 * difference between the student's class probabilities (one augmentation) and the mean teacher's (another
 * augmentation of the same image, computed outside the gradient), summed over classes, kept only where the
 * teacher's top probability exceeds `threshold`, averaged over the rows. The teacher is the moving average of
 * the weights (`OptimizerConfig.ema`).
 */
export function consistency(weight: number, threshold: number): Objective {
  return {
    name: 'consistency',
    needsSource: false,
    needsTarget: true,
    needsTeacher: true,
    groups: ['features', 'label'],
    loss(f) {
      const teacher = f.teacherProbs();
      const mask = tf.cast(tf.greater(tf.max(teacher, 1), threshold), 'float32');
      const distance = tf.sum(tf.square(tf.sub(tf.softmax(f.targetLogits()), teacher)), 1);
      return { loss: tf.mul(tf.mean(tf.mul(distance, mask)), weight) as tf.Scalar };
    },
  };
}

/**
 * Self-ensembling's class-balance term, times `weight`: the binary cross-entropy between the batch's mean
 * predicted probability of each class and 1/K, averaged over the K classes, so the target predictions cannot
 * collapse onto a few classes. Over the batch a trainer computes (with several trainers, each one's shard).
 */
export function classBalance(weight: number): Objective {
  return {
    name: 'class-balance',
    needsSource: false,
    needsTarget: true,
    groups: ['features', 'label'],
    loss(f) {
      const mean = tf.clipByValue(tf.mean(tf.softmax(f.targetLogits()), 0), 1e-6, 1 - 1e-6);
      const k = mean.shape[0]!;
      const prior = 1 / k;
      const bce = tf.neg(tf.add(tf.mul(prior, tf.log(mean)), tf.mul(1 - prior, tf.log(tf.sub(1, mean)))));
      return { loss: tf.mul(tf.mean(bce), weight) as tf.Scalar };
    },
  };
}
