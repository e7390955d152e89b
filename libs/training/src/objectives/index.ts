import { domainAdversarial } from './domain.ts';
import { targetEntropy } from './entropy.ts';
import { infoMax } from './info-max.ts';
import { labelCrossEntropy } from './label.ts';
import { classBalance, consistency } from './mean-teacher.ts';
import type { Objective } from './objective.ts';

export type { Forward, Objective, ReportedFigure, TermOutput } from './objective.ts';
export { classBalance, consistency, domainAdversarial, infoMax, labelCrossEntropy, targetEntropy };

/**
 * source-only: label cross-entropy on the source. dann: plus the GRL domain term. shot: from a source model, the
 * label head frozen, information maximisation on the target alone (no source term). mean-teacher: label
 * cross-entropy plus self-ensembling's consistency with the weights' moving average and its class balance.
 */
export const METHODS = ['source-only', 'dann', 'shot', 'mean-teacher'] as const;
export type Method = (typeof METHODS)[number];

/** Weights of mean-teacher's terms and the teacher's confidence threshold. */
export interface MeanTeacherWeights {
  readonly consistency: number;
  readonly confidence: number;
  readonly classBalance: number;
}

/** The loss terms of a method and its weights: label cross-entropy, then what the method adds (shot: its own). */
export function objectivesOf(o: {
  method: Method;
  domainWeight: number;
  targetEntropy?: number;
  infoMax?: number;
  meanTeacher?: MeanTeacherWeights;
}): Objective[] {
  if (o.method === 'shot') return [infoMax(o.infoMax ?? 1)];
  const terms = [labelCrossEntropy];
  if (o.method === 'dann') terms.push(domainAdversarial(o.domainWeight));
  if (o.method === 'mean-teacher') {
    const mt = o.meanTeacher;
    if (!mt) throw new Error('mean-teacher needs the weights of its terms (TrainConfig.meanTeacher).');
    terms.push(consistency(mt.consistency, mt.confidence), classBalance(mt.classBalance));
  }
  if ((o.targetEntropy ?? 0) > 0) terms.push(targetEntropy(o.targetEntropy!));
  return terms;
}
