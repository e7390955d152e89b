import { domainAdversarial } from './domain.ts';
import { targetEntropy } from './entropy.ts';
import { infoMax } from './info-max.ts';
import { labelCrossEntropy } from './label.ts';
import type { Objective } from './objective.ts';

export type { Forward, Objective, ReportedFigure, TermOutput } from './objective.ts';
export { domainAdversarial, infoMax, labelCrossEntropy, targetEntropy };

/**
 * source-only: label cross-entropy on the source. dann: plus the GRL domain term. shot: from a source model, the
 * label head frozen, information maximisation on the target alone (no source term).
 */
export const METHODS = ['source-only', 'dann', 'shot'] as const;
export type Method = (typeof METHODS)[number];

/** The loss terms of a method and its weights: label cross-entropy, then what the method adds (shot: its own). */
export function objectivesOf(o: {
  method: Method;
  domainWeight: number;
  targetEntropy?: number;
  infoMax?: number;
}): Objective[] {
  if (o.method === 'shot') return [infoMax(o.infoMax ?? 1)];
  const terms = [labelCrossEntropy];
  if (o.method === 'dann') terms.push(domainAdversarial(o.domainWeight));
  if ((o.targetEntropy ?? 0) > 0) terms.push(targetEntropy(o.targetEntropy!));
  return terms;
}
