import * as tf from '@tensorflow/tfjs-core';
import type { DannNetwork } from './network.ts';
import type { Forward, Objective, ReportedFigure } from './objectives/index.ts';

/** One step's data: preprocessed NHWC images as flat floats. */
export interface StepBatch {
  /** Preprocessed source images; may be empty when no term reads the source rows. */
  readonly source: Float32Array;
  readonly sourceLabels: Uint8Array;
  /** Unlabelled target images; required when a term reads the target, ignored otherwise. */
  readonly target?: Float32Array;
  /**
   * Dataset indices of the source and target rows: when given, each sample's dropout mask depends only on
   * (step seed, domain, index), so a step's gradient does not depend on how its batch is sharded.
   */
  readonly ids?: { readonly source: ArrayLike<number>; readonly target?: ArrayLike<number> };
  /** The mean teacher's class probabilities on the target rows (rows x 10), for terms that read them. */
  readonly teacherProbs?: Float32Array;
}

export interface StepOptions {
  /** The loss terms, summed (objectivesOf(config)). */
  readonly objectives: readonly Objective[];
  /** The GRL weight at this step. */
  readonly lambda: number;
  /** Seeds this step's dropout masks. */
  readonly seed: number;
}

export interface StepResult {
  /** Gradient of the mean loss over this batch w.r.t. every parameter, in the flat layout. */
  readonly gradient: Float32Array;
  /** Source samples in the batch: the weight of this gradient in a distributed average. */
  readonly samples: number;
  readonly labelLoss: number;
  /** NaN without a domain term. */
  readonly domainLoss: number;
  readonly labelAccuracy: number;
  /** Accuracy of the domain classifier on source+target (0.5 = features indistinguishable); NaN without a domain term. */
  readonly domainAccuracy: number;
}

/** Marks target ids apart from source ids in the per-row dropout seeds. */
const TARGET_ID = 0x80000000;

/**
 * The loss parts and the flat gradient of the sum of `o.objectives` on one batch, without changing the
 * weights. The features of source and target rows come from one pass; the label head runs on either domain
 * only when a term asks for it.
 */
export async function computeGradient(net: DannNetwork, batch: StepBatch, o: StepOptions): Promise<StepResult> {
  const { height: h, width: w, channels: c } = net.arch.input;
  const per = h * w * c;
  const samples = batch.sourceLabels.length;
  if (samples < 1) throw new Error('a step needs at least one source sample.');
  const readsSource = o.objectives.some((t) => t.needsSource);
  const ns = readsSource ? samples : 0; // source rows in the forward pass
  if (readsSource && batch.source.length !== ns * per)
    throw new Error(`source batch holds ${batch.source.length} floats, expected ${ns} x ${per}.`);
  const needsTarget = o.objectives.some((t) => t.needsTarget);
  const nt = needsTarget ? (batch.target?.length ?? 0) / per : 0;
  if (needsTarget && (!Number.isInteger(nt) || nt < 1))
    throw new Error(
      `${o.objectives.find((t) => t.needsTarget)!.name} needs a target batch of whole ${h}x${w}x${c} images.`,
    );
  let rowIds: Uint32Array | undefined;
  if (batch.ids) {
    if (batch.ids.source.length !== samples || (needsTarget && batch.ids.target?.length !== nt))
      throw new Error('batch ids must match the source and target rows.');
    rowIds = new Uint32Array(ns + nt);
    if (readsSource) rowIds.set(batch.ids.source);
    for (let i = 0; i < nt; i++) rowIds[ns + i] = (batch.ids.target![i] | TARGET_ID) >>> 0;
  }
  const options = (rows?: 'source' | 'target') => ({
    training: true,
    seed: o.seed,
    rowIds: rows === 'source' ? rowIds?.subarray(0, ns) : rows === 'target' ? rowIds?.subarray(ns) : rowIds,
  });

  const reported = new Map<ReportedFigure, tf.Scalar>();
  const labels = tf.tensor1d(batch.sourceLabels, 'int32');
  const groups = new Set(o.objectives.flatMap((t) => t.groups));
  const variables = net.variables.filter((_, i) => groups.has(net.specs[i].group)) as tf.Variable[];
  const { grads, value } = tf.variableGrads(() => {
    const parts = [];
    if (ns) parts.push(tf.tensor4d(batch.source, [ns, h, w, c]));
    if (nt) parts.push(tf.tensor4d(batch.target!, [nt, h, w, c]));
    const x = parts.length === 1 ? parts[0] : tf.concat(parts);
    const features = net.features(x, options());
    let sourceLogits: tf.Tensor2D | undefined;
    let targetLogits: tf.Tensor2D | undefined;
    let teacherProbs: tf.Tensor2D | undefined;
    const forward: Forward = {
      net,
      ns,
      nt,
      features,
      sourceLabels: labels,
      lambda: o.lambda,
      options,
      sourceLogits: () =>
        (sourceLogits ??= net.labelLogits(nt ? tf.slice(features, [0, 0], [ns, -1]) : features, options('source'))),
      targetLogits: () => (targetLogits ??= net.labelLogits(tf.slice(features, [ns, 0], [nt, -1]), options('target'))),
      teacherProbs: () => {
        if (batch.teacherProbs?.length !== nt * 10)
          throw new Error(`the teacher's predictions must hold ${nt} x 10 values, one row per target image.`);
        return (teacherProbs ??= tf.tensor2d(batch.teacherProbs, [nt, 10]));
      },
    };
    let total: tf.Scalar | undefined;
    for (const term of o.objectives) {
      const out = term.loss(forward);
      for (const [k, v] of Object.entries(out.report ?? {})) reported.set(k as ReportedFigure, tf.keep(v));
      total = total ? (tf.add(total, out.loss) as tf.Scalar) : out.loss;
    }
    return total!;
  }, variables);

  // Read asynchronously (the webgpu backend cannot read a tensor synchronously in Node), every tensor at once:
  // on a GPU each read is a round trip, and they overlap.
  const gradient = new Float32Array(net.size);
  const parts = await Promise.all(net.variables.map((v) => grads[v.name]?.data()));
  net.specs.forEach((s, i) => parts[i] && gradient.set(parts[i] as Float32Array, s.offset)); // groups no term reaches keep a zero gradient
  const names = ['labelLoss', 'domainLoss', 'labelAccuracy', 'domainAccuracy'] as const;
  const [labelLoss, domainLoss, labelAccuracy, domainAccuracy] = await Promise.all(
    names.map(async (k) => (await reported.get(k)?.data())?.[0] ?? NaN),
  );
  const result: StepResult = { gradient, samples, labelLoss, domainLoss, labelAccuracy, domainAccuracy };
  tf.dispose([...Object.values(grads), value, labels, ...reported.values()]);
  return result;
}
