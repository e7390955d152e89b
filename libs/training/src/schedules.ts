/** Schedules from Ganin & Lempitsky 2015, as functions of training progress p in [0, 1]. */

/** GRL weight: lambda(p) = max * (2 / (1 + exp(-gamma p)) - 1), rising from 0 to ~max (gamma = 10 in the paper). */
export function lambdaSchedule(p: number, max = 1, gamma = 10): number {
  return max * (2 / (1 + Math.exp(-gamma * clamp01(p))) - 1);
}

/** Learning rate: lr(p) = lr0 / (1 + alpha p)^beta (alpha = 10, beta = 0.75 in the paper), annealed over the whole run. */
export function lrSchedule(p: number, lr0: number, alpha = 10, beta = 0.75): number {
  return lr0 / (1 + alpha * clamp01(p)) ** beta;
}

/** Progress of step `step` (0-based) in a run of `totalSteps`. */
export function progress(step: number, totalSteps: number): number {
  return totalSteps <= 1 ? 0 : clamp01(step / (totalSteps - 1));
}

function clamp01(p: number): number {
  return Math.min(Math.max(p, 0), 1);
}
