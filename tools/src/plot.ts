import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UMAP } from 'umap-js';
import { createRng, loadDataset, preprocessBatch, takeFirst, type ImageSet } from '@dann/data';
import { evaluate, type DannNetwork } from '@dann/training';
import { selectBackend } from '@dann/backend';
import { oneOf, parseCommand, positiveInt, runMain } from '@dann/cli';
import { CLASS_COLORS, confusionChart, lineChart, scatterPanels, type ScatterPoint } from './charts.ts';
import { loadRun } from './runs.ts';
import { readMetrics, smooth } from './metrics.ts';

const command = {
  name: 'plot',
  summary:
    'Plots a training run: loss curves, accuracy per epoch, target confusion matrix, and a joint UMAP embedding of source and target features.',
  usage: 'npx nx run tools:plot -- runs/NAME [runs/OTHER ...] [--points 500]',
  options: {
    points: { type: 'string', description: 'test images per domain in the embedding plot', default: '500' },
    checkpoint: { type: 'string', description: 'best (lowest source-validation loss) or last', default: 'best' },
    'data-dir': { type: 'string', description: 'data folder (default: $DANN_DATA_DIR or <workspace>/data)' },
  },
} as const;

/** Feature-layer activations of the first `n` images of a set. */
async function features(
  net: DannNetwork,
  set: ImageSet,
  n: number,
): Promise<{ x: Float32Array; labels: Uint8Array; dim: number; count: number }> {
  const s = takeFirst(set, n);
  const x = await net.embed(
    preprocessBatch(
      s,
      Uint32Array.from({ length: s.count }, (_, i) => i),
    ),
  );
  return { x, labels: s.labels, dim: x.length / s.count, count: s.count };
}

async function embeddingPlot(
  net: DannNetwork,
  source: ImageSet,
  target: ImageSet,
  n: number,
  title: string,
): Promise<Buffer> {
  const src = await features(net, source, n),
    tgt = await features(net, target, n);
  const rows: number[][] = [];
  for (const f of [src, tgt])
    for (let i = 0; i < f.count; i++) rows.push(Array.from(f.x.subarray(i * f.dim, (i + 1) * f.dim)));
  const rng = createRng(42);
  const xy = new UMAP({ nComponents: 2, nNeighbors: 15, minDist: 0.1, random: () => rng.next() }).fit(rows);
  const domainOf = (i: number) => (i < src.count ? 'source' : 'target');
  const labelOf = (i: number) => (i < src.count ? src.labels[i] : tgt.labels[i - src.count]);
  const shape = (i: number) => (i < src.count ? 'circle' : 'cross') as ScatterPoint['shape'];
  return scatterPanels(title, [
    {
      title: 'by domain',
      points: xy.map(([x, y], i) => ({
        x,
        y,
        shape: shape(i),
        color: domainOf(i) === 'source' ? '#1f77b4' : '#d62728',
      })),
      legend: [
        { name: 'source (o)', color: '#1f77b4' },
        { name: 'target (x)', color: '#d62728' },
      ],
    },
    {
      title: 'by class (o source, x target)',
      points: xy.map(([x, y], i) => ({ x, y, shape: shape(i), color: CLASS_COLORS[labelOf(i)] })),
      legend: CLASS_COLORS.map((color, k) => ({ name: String(k), color })),
    },
  ]);
}

runMain(async () => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const { values: v, positionals: runs } = args;
  if (runs.length === 0) throw new Error('name at least one run directory, e.g. runs/NAME.');
  const checkpoint = oneOf('checkpoint', v.checkpoint, ['best', 'last'] as const);
  const points = positiveInt('points', v.points);
  await selectBackend({ backend: 'auto' });
  for (const run of runs) {
    const { config, net } = loadRun(run, checkpoint);
    const { steps, epochs } = readMetrics(join(run, 'metrics.jsonl'));
    const { source, target } = config.run.data;
    const { method } = config.run.train;
    const name = `${run} (${method}, ${source} -> ${target})`;
    const dir = join(run, 'plots');
    mkdirSync(dir, { recursive: true });
    const loss = lineChart({
      title: `Training losses: ${name}`,
      xLabel: 'step',
      yLabel: 'loss (EMA) / lambda',
      series: [
        { name: 'label loss', color: '#1f77b4', points: smooth(steps.map((s) => [s.step, s.labelLoss])) },
        {
          name: 'domain loss',
          color: '#d62728',
          points: smooth(steps.filter((s) => s.domainLoss !== null).map((s) => [s.step, s.domainLoss!])),
        },
        { name: 'lambda (GRL)', color: '#7f7f7f', points: steps.map((s) => [s.step, s.lambda]) },
      ],
    });
    const accuracy = lineChart({
      title: `Accuracy per epoch: ${name}`,
      xLabel: 'epoch',
      yLabel: 'accuracy',
      yRange: [0, 1],
      series: [
        { name: 'target test', color: '#d62728', markers: true, points: epochs.map((e) => [e.epoch, e.targetTestAcc]) },
        { name: 'source test', color: '#1f77b4', markers: true, points: epochs.map((e) => [e.epoch, e.sourceTestAcc]) },
        { name: 'source val', color: '#2ca02c', markers: true, points: epochs.map((e) => [e.epoch, e.sourceValAcc]) },
      ],
    });
    const dataOpts = { dataDir: v['data-dir'], log: (l: string) => console.log(l) };
    const sourceTest = loadDataset(source, 'test', dataOpts),
      targetTest = loadDataset(target, 'test', dataOpts);
    const resultsFile = join(run, 'results.json');
    const confusion = existsSync(resultsFile)
      ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as { target: { confusion: number[][] } }).target.confusion
      : (await evaluate(net, targetTest)).confusion;
    const files: Record<string, Buffer> = {
      'loss.png': loss,
      'accuracy.png': accuracy,
      'confusion.png': confusionChart({ title: `Target (${target}) test confusion: ${run}`, matrix: confusion }),
      'embedding.png': await embeddingPlot(
        net,
        sourceTest,
        targetTest,
        points,
        `Feature layer, UMAP of ${points} ${source} + ${points} ${target} test images: ${run}`,
      ),
    };
    for (const [f, png] of Object.entries(files)) writeFileSync(join(dir, f), png);
    net.dispose();
    console.log(
      `wrote ${Object.keys(files)
        .map((f) => join(dir, f))
        .join(', ')}`,
    );
  }
});
