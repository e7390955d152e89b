import type * as tf from '@tensorflow/tfjs-core';
import type { DannNetwork, ForwardOptions } from '../network.ts';

/**
 * What one step's forward pass offers the loss terms: the features of the source rows (first `ns`; none when
 * no term reads them) and the target rows (next `nt`), the source labels, and the label head on either domain, each computed at most once
 * whichever terms ask for it.
 */
export interface Forward {
  readonly net: DannNetwork;
  readonly ns: number;
  readonly nt: number;
  /** ns + nt rows: the source images, then the target images. */
  readonly features: tf.Tensor2D;
  readonly sourceLabels: tf.Tensor1D;
  /** The GRL weight (and any other scheduled weight) at this step. */
  readonly lambda: number;
  /** Forward options (dropout seed and per-row ids) of all rows, or of one domain's rows. */
  options(rows?: 'source' | 'target'): ForwardOptions;
  sourceLogits(): tf.Tensor2D;
  targetLogits(): tf.Tensor2D;
  /** The mean teacher's class probabilities (nt x 10) on another augmentation of the target rows: constants. */
  teacherProbs(): tf.Tensor2D;
}

/** What a term adds: its weighted loss, and the figures a step reports (as scalars, read after the step). */
export interface TermOutput {
  readonly loss: tf.Scalar;
  readonly report?: Partial<Record<ReportedFigure, tf.Scalar>>;
}

export type ReportedFigure = 'labelLoss' | 'labelAccuracy' | 'domainLoss' | 'domainAccuracy';

/** One loss term of the training objective; the step sums the terms the run's config names. */
export interface Objective {
  readonly name: string;
  /** The term reads the labelled source rows (when no term does, the step leaves them out of the forward pass). */
  readonly needsSource: boolean;
  /** The term reads the target batch (a step without target images is refused). */
  readonly needsTarget: boolean;
  /** The term reads the mean teacher's predictions on the target rows (the step's caller computes them). */
  readonly needsTeacher?: boolean;
  /** Parameter groups the term can reach; the step reads gradients only from these. */
  readonly groups: readonly ('features' | 'label' | 'domain')[];
  loss(f: Forward): TermOutput;
}
