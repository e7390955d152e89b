import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { loadDataset } from '@dann/data';
import { architectureOf, evaluate } from '@dann/training';
import { selectBackend } from '@dann/backend';
import { exportOnnx, scoreOnnx, verificationImages, type OnnxExportResult } from '@dann/onnx';
import { oneOf, parseCommand, positiveInt, runMain } from '@dann/cli';
import type { RunResult } from './report.ts';
import { loadRun, type LoadedRun } from './runs.ts';

const command = {
  name: 'export-onnx',
  summary:
    "Exports a trained run's label path to runs/NAME/model.onnx (+ model.json), verified in onnxruntime-node against tfjs.",
  usage: 'npx nx run tools:export-onnx -- runs/NAME [--int8]',
  options: {
    int8: {
      type: 'boolean',
      description: 'also write model.int8.onnx (weight-only per-channel int8) and report its accuracy against fp32',
    },
    checkpoint: { type: 'string', description: 'best (lowest source-validation loss) or last', default: 'best' },
    'verify-count': {
      type: 'string',
      description: 'real test images per domain compared with tfjs (at least 128)',
      default: '256',
    },
    'eval-limit': {
      type: 'string',
      description: 'test images per domain for the int8 accuracy comparison',
      default: '10000',
    },
    'data-dir': { type: 'string', description: 'data folder (default: $DANN_DATA_DIR or <workspace>/data)' },
  },
} as const;

/** The network's test accuracy: from tools:evaluate's results.json when it scored this checkpoint, else measured now. */
async function accuracyOfRun(run: string, loaded: LoadedRun, dataDir: string | undefined) {
  const file = join(run, 'results.json');
  if (existsSync(file)) {
    const r = JSON.parse(readFileSync(file, 'utf8')) as RunResult;
    if (r.checkpoint === basename(loaded.file) && r.step === loaded.checkpoint.step)
      return {
        source: r.source.accuracy,
        target: r.target.accuracy,
        testImages: Math.min(r.source.count, r.target.count),
      };
  }
  const { source, target } = loaded.config.run.data;
  const s = await evaluate(loaded.net, loadDataset(source, 'test', { dataDir }));
  const t = await evaluate(loaded.net, loadDataset(target, 'test', { dataDir }));
  return { source: s.accuracy, target: t.accuracy, testImages: Math.min(s.count, t.count) };
}

const line = (r: OnnxExportResult) => {
  const v = r.sidecar.verification;
  return `${r.file}: ${(r.bytes / 1024).toFixed(0)} KiB, onnxruntime vs tfjs on ${v.count} test images: max |Δprob| ${v.maxAbsDiff.toExponential(2)}, top-1 differs on ${v.top1Mismatches}${r.sidecar.quantization === 'none' ? ` (allowed ${v.tolerance}, none): verified` : ''}`;
};

runMain(async () => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const { values: v, positionals: runs } = args;
  if (runs.length !== 1) throw new Error('name one run directory, e.g. runs/NAME.');
  const run = runs[0];
  const which = oneOf('checkpoint', v.checkpoint, ['best', 'last'] as const);
  const perDomain = positiveInt('verify-count', v['verify-count']);
  if (perDomain < 128)
    throw new Error('--verify-count must be at least 128 (the export is verified on at least 256 real test images).');
  const evalLimit = positiveInt('eval-limit', v['eval-limit']);
  const dataDir = v['data-dir'];
  await selectBackend({ backend: 'auto', log: () => {} });
  const loaded = loadRun(run, which);
  const { config, checkpoint } = loaded;
  const { source, target } = config.run.data;
  const { method } = config.run.train;
  const accuracy = await accuracyOfRun(run, loaded, dataDir);
  loaded.net.dispose();
  const request = {
    arch: architectureOf(checkpoint.config),
    weights: loaded.weights,
    training: { source, target, method, network: checkpoint.arch, step: checkpoint.step },
    accuracy,
    verify: verificationImages([source, target], perDomain, dataDir),
  };
  const fp32 = await exportOnnx({ ...request, file: join(run, 'model.onnx') });
  console.log(line(fp32));
  console.log(`metadata: ${fp32.sidecarFile}`);
  if (!v.int8) return;
  const int8 = await exportOnnx({ ...request, file: join(run, 'model.int8.onnx'), quantization: 'int8' });
  console.log(line(int8));
  console.log(`\n| model | size | ${source} test acc | ${target} test acc |\n| --- | --- | --- | --- |`);
  const sets = [source, target].map((name) => verificationImages([name], evalLimit, dataDir));
  const scores: number[][] = [];
  for (const r of [fp32, int8]) {
    const acc = await scoreOnnx(r.file, request.arch.input, sets);
    scores.push(acc);
    console.log(
      `| ${basename(r.file)} (${r.sidecar.quantization === 'none' ? 'fp32' : 'int8'}) | ${(r.bytes / 1024).toFixed(0)} KiB | ${acc[0].toFixed(4)} | ${acc[1].toFixed(4)} |`,
    );
  }
  const pts = (i: number) => `${((scores[1][i] - scores[0][i]) * 100).toFixed(2)}`;
  console.log(
    `\nint8 - fp32: ${pts(0)} points on ${source}, ${pts(1)} on ${target}; size ${((int8.bytes / fp32.bytes) * 100).toFixed(0)}% of fp32`,
  );
});
