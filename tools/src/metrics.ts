import { existsSync, readFileSync } from 'node:fs';

export interface StepLine {
  type: 'step';
  step: number;
  labelLoss: number;
  domainLoss: number | null;
  lambda: number;
}
export interface EpochLine {
  type: 'epoch';
  epoch: number;
  sourceValAcc: number;
  sourceTestAcc: number;
  targetTestAcc: number;
}

/** Exponential moving average, so noisy per-step losses read as curves. */
export function smooth(points: readonly [number, number][], alpha = 0.05): [number, number][] {
  let m = NaN;
  return points.map(([x, y]) => [x, (m = Number.isNaN(m) ? y : m + alpha * (y - m))]);
}

export function readMetrics(file: string): { steps: StepLine[]; epochs: EpochLine[] } {
  if (!existsSync(file))
    throw new Error(`${file} does not exist; was the run trained with trainer:train or coordinator:serve?`);
  const steps: StepLine[] = [],
    epochs: EpochLine[] = [];
  for (const [i, line] of readFileSync(file, 'utf8').split('\n').entries()) {
    if (!line.trim()) continue;
    let m: { type?: string };
    try {
      m = JSON.parse(line);
    } catch {
      throw new Error(`${file} line ${i + 1} is not JSON.`);
    }
    if (m.type === 'step') steps.push(m as StepLine);
    else if (m.type === 'epoch') epochs.push(m as EpochLine);
  }
  return { steps, epochs };
}
