import * as tf from '@tensorflow/tfjs-core';
import { accuracy } from './label.ts';
import type { Objective } from './objective.ts';

/**
 * DANN's domain term (Ganin et al. 2016): the domain head classifies every row as source (0) or target (1)
 * through the gradient reversal layer, so the head minimises `weight` x the domain cross-entropy and the
 * features get -λ x its gradient.
 */
export function domainAdversarial(weight: number): Objective {
  return {
    name: 'domain',
    needsSource: true,
    needsTarget: true,
    groups: ['features', 'domain'],
    loss(f) {
      const labels = tf.concat([tf.zeros([f.ns], 'int32'), tf.ones([f.nt], 'int32')]) as tf.Tensor1D;
      const logits = f.net.domainLogits(f.features, f.lambda, f.options());
      const loss = tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 2), logits) as tf.Scalar;
      return {
        loss: tf.mul(loss, weight),
        report: { domainLoss: loss, domainAccuracy: accuracy(logits, labels) },
      };
    },
  };
}
