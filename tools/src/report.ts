import type { Evaluation } from '@dann/training';

export interface RunResult {
  readonly run: string;
  readonly network: string;
  readonly method: string;
  readonly pair: string;
  readonly checkpoint: string;
  readonly step: number;
  readonly source: Evaluation;
  readonly target: Evaluation;
}

const pct = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(4));

/** The results table in the reference project's shape: network, source accuracy, target accuracy. */
export function resultsTable(results: readonly RunResult[]): string {
  const rows = [
    '| run | network | method | pair | source acc | target acc |',
    '| --- | --- | --- | --- | --- | --- |',
    ...results.map(
      (r) =>
        `| ${r.run} | ${r.network} | ${r.method} | ${r.pair} | ${pct(r.source.accuracy)} | ${pct(r.target.accuracy)} |`,
    ),
  ];
  return rows.join('\n');
}

/** Per-class accuracy and a confusion matrix (rows: true digit, columns: predicted). */
export function confusionMarkdown(title: string, e: Evaluation): string {
  const head = `| true \\ predicted | ${[...Array(10).keys()].join(' | ')} | accuracy |`;
  const sep = `| --- |${' --- |'.repeat(11)}`;
  const rows = e.confusion.map((row, k) => `| **${k}** | ${row.join(' | ')} | ${pct(e.perClass[k])} |`);
  return [`### ${title}: accuracy ${pct(e.accuracy)} on ${e.count} images`, '', head, sep, ...rows].join('\n');
}

export function resultMarkdown(r: RunResult): string {
  return [
    `# Results of ${r.run}`,
    '',
    `Checkpoint ${r.checkpoint} (step ${r.step}), evaluated on the full test sets.`,
    '',
    resultsTable([r]),
    '',
    confusionMarkdown(`Source (${r.pair.split(' -> ')[0]})`, r.source),
    '',
    confusionMarkdown(`Target (${r.pair.split(' -> ')[1]})`, r.target),
    '',
  ].join('\n');
}
