import * as tf from '@tensorflow/tfjs-core';

/**
 * Gradient reversal layer (Ganin & Lempitsky 2015): identity in the forward pass,
 * -lambda times the incoming gradient in the backward pass.
 */
export function gradientReversal<T extends tf.Tensor>(x: T, lambda: number): T {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.clone(args[0] as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => tf.mul(dy, tf.scalar(-lambda)),
  }));
  return op(x) as T;
}

/** Identity in the forward pass, zero gradient backward: x enters the differentiated function as a constant. */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.clone(args[0] as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
  }));
  return op(x) as T;
}
