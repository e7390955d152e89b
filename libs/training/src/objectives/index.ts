import { domainAdversarial } from './domain.ts';
import { targetEntropy } from './entropy.ts';
import { labelCrossEntropy } from './label.ts';
import type { Objective } from './objective.ts';

export type { Forward, Objective, ReportedFigure, TermOutput } from './objective.ts';
export { domainAdversarial, labelCrossEntropy, targetEntropy };

export const METHODS = ['source-only', 'dann'] as const;
export type Method = (typeof METHODS)[number];

/** The loss terms of a method and its weights: label cross-entropy, then what the method adds. */
export function objectivesOf(o: { method: Method; domainWeight: number; targetEntropy?: number }): Objective[] {
  const terms = [labelCrossEntropy];
  if (o.method === 'dann') terms.push(domainAdversarial(o.domainWeight));
  if ((o.targetEntropy ?? 0) > 0) terms.push(targetEntropy(o.targetEntropy!));
  return terms;
}
