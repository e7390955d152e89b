import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDataset, sliceSet } from '@dann/data';
import {
  evaluate,
  greyInput,
  withDomainHead,
  domainAfter,
  conditionalDomain,
  type Architecture,
  loadCheckpoint,
  PRESETS,
  paramSpecs,
  saveCheckpoint,
  selectBackend,
  Trainer,
  architectureOf,
  type TrainConfig,
} from '@dann/models';
import { parseCommand, runMain } from '@dann/cli';
import { toTrainOptions, trainCommand, type TrainOptions } from './options.ts';
import { Progress } from './progress.ts';

function trainConfig(o: TrainOptions): TrainConfig {
  let arch: Architecture = PRESETS[o.preset];
  if (o.grey) arch = greyInput(arch);
  arch = domainAfter(arch, o.domainAfter);
  if (o.domainHead) arch = withDomainHead(arch, o.domainHead, o.domainDropout);
  if (o.conditional) arch = conditionalDomain(arch);
  return {
    preset: o.preset,
    ...(arch !== PRESETS[o.preset] ? { architecture: arch } : {}),
    method: o.method,
    epochs: o.epochs,
    batchSize: o.batchSize,
    optimizer: { kind: o.optimizer, momentum: o.momentum, clipNorm: o.clipNorm },
    lr: o.lr,
    lrSchedule: o.lrSchedule,
    lambdaMax: o.lambdaMax,
    lambdaGamma: o.lambdaGamma,
    domainWeight: o.domainWeight,
    adversarial: o.adversarial,
    ...(o.targetEntropy > 0 ? { targetEntropy: o.targetEntropy } : {}),
    seed: o.seed,
    frozen: o.freeze,
  };
}

/**
 * Copies the feature extractor and label head of a trained run into fresh weights: by tensor name, or by
 * position where the two networks differ only in where the features end (`--domain-after`).
 */
function warmStart(trainer: Trainer, dir: string, log: (l: string) => void): void {
  const file = existsSync(join(dir, 'best.bin')) ? join(dir, 'best.bin') : join(dir, 'checkpoint.bin');
  const c = loadCheckpoint<TrainConfig>(file);
  const from = paramSpecs(architectureOf(c.config)).filter((s) => s.group !== 'domain');
  const mine = trainer.net.specs.filter((s) => s.group !== 'domain');
  const byName = mine.map((spec) => from.find((s) => s.name === spec.name && s.size === spec.size));
  const named = byName.every((s) => s !== undefined);
  if (!named && !(mine.length === from.length && mine.every((s, i) => s.shape.join('x') === from[i].shape.join('x')))) {
    throw new Error(
      `--init-from ${dir}: its network (${c.arch}) does not match this one at ${mine.find((_, i) => !byName[i])!.name}.`,
    );
  }
  mine.forEach((spec, i) => {
    const src = named ? byName[i]! : from[i];
    trainer.weights.set(c.weights.subarray(src.offset, src.offset + src.size), spec.offset);
  });
  trainer.net.setWeights(trainer.weights);
  log(
    `warm start from ${file} (step ${c.step}): feature extractor and label head${named ? '' : ` (by position: ${c.arch} -> ${trainer.net.arch.name})`}`,
  );
}

runMain(async () => {
  const args = parseCommand(trainCommand, process.argv.slice(2));
  if (!args) return;
  const o = toTrainOptions(args.values);
  const log = (line: string) => console.log(line);
  mkdirSync(o.out, { recursive: true });
  const backend = await selectBackend({ backend: o.backend, gpu: o.gpu, strictDevice: o.strictDevice, log });

  const dataOpts = { dataDir: o.dataDir, log };
  const sourceAll = loadDataset(o.source, 'train', { ...dataOpts, limit: o.limit });
  const targetTrain = loadDataset(o.target, 'train', { ...dataOpts, limit: o.limit });
  const valCount = Math.min(o.valCount, Math.floor(sourceAll.count / 5));
  const sourceTrain = sliceSet(sourceAll, 0, sourceAll.count - valCount, `${o.source}/train`);
  const sourceVal = sliceSet(sourceAll, sourceAll.count - valCount, sourceAll.count, `${o.source}/val`);
  const sourceTest = loadDataset(o.source, 'test', { ...dataOpts, limit: o.evalLimit });
  const targetTest = loadDataset(o.target, 'test', { ...dataOpts, limit: o.evalLimit });

  const checkpointFile = join(o.out, 'checkpoint.bin');
  const bestFile = join(o.out, 'best.bin');
  const metricsFile = join(o.out, 'metrics.jsonl');
  let trainer: Trainer;
  let bestVal = Infinity;
  if (o.resume) {
    const c = loadCheckpoint<TrainConfig>(checkpointFile);
    trainer = Trainer.fromCheckpoint(c, sourceTrain, targetTrain);
    bestVal = Number(c.extra?.bestValLoss ?? Infinity);
    log(`resumed from ${checkpointFile} at step ${c.step}`);
  } else {
    trainer = new Trainer(trainConfig(o), sourceTrain, targetTrain);
    if (o.initFrom) warmStart(trainer, o.initFrom, log);
    writeFileSync(metricsFile, '');
  }
  const config = {
    options: o,
    train: trainer.config,
    backend,
    data: {
      sourceTrain: sourceTrain.count,
      sourceVal: sourceVal.count,
      targetTrain: targetTrain.count,
      sourceTest: sourceTest.count,
      targetTest: targetTest.count,
    },
  };
  writeFileSync(join(o.out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  log(
    `${o.method} ${o.source} -> ${o.target}: ${trainer.net.size} parameters, ${trainer.totalSteps} steps of ${o.batchSize}, writing ${o.out}`,
  );

  const progress = new Progress(trainer.totalSteps, trainer.stepsPerEpoch);
  const record = (entry: Record<string, unknown>) => appendFileSync(metricsFile, JSON.stringify(entry) + '\n');
  let windowStart = performance.now();
  let windowSamples = 0;
  while (!trainer.done) {
    const r = trainer.trainStep();
    windowSamples += r.samples;
    const now = performance.now();
    const samplesPerSec = (windowSamples / (now - windowStart)) * 1000;
    if (now - windowStart > 5000) {
      windowStart = now;
      windowSamples = 0;
    }
    record({
      type: 'step',
      step: r.step,
      epoch: r.epoch,
      labelLoss: r.labelLoss,
      domainLoss: r.domainLoss,
      labelAcc: r.labelAccuracy,
      domainAcc: r.domainAccuracy,
      lambda: r.lambda,
      lr: r.lr,
      gradNorm: r.gradNorm,
      samplesPerSec,
    });
    progress.update(
      trainer.step,
      `loss ${r.labelLoss.toFixed(3)}${o.method === 'dann' ? ` dom ${r.domainLoss.toFixed(3)} λ ${r.lambda.toFixed(2)}` : ''} ${samplesPerSec.toFixed(0)} samples/s`,
    );
    if (trainer.step % trainer.stepsPerEpoch === 0 || trainer.done) {
      const epoch = Math.ceil(trainer.step / trainer.stepsPerEpoch);
      const val = evaluate(trainer.net, sourceVal);
      const src = evaluate(trainer.net, sourceTest);
      const tgt = evaluate(trainer.net, targetTest);
      const best = val.loss < bestVal;
      if (best) bestVal = val.loss;
      const entry = {
        type: 'epoch',
        epoch,
        step: trainer.step,
        sourceValLoss: val.loss,
        sourceValAcc: val.accuracy,
        sourceTestAcc: src.accuracy,
        targetTestAcc: tgt.accuracy,
        best,
      };
      record(entry);
      progress.clear();
      log(
        `epoch ${epoch}/${o.epochs}: source val loss ${val.loss.toFixed(4)} acc ${val.accuracy.toFixed(4)}, source test ${src.accuracy.toFixed(4)}, target test ${tgt.accuracy.toFixed(4)}${best ? ' (best so far)' : ''}`,
      );
      const ckpt = trainer.checkpoint({ bestValLoss: bestVal, sourceValLoss: val.loss });
      saveCheckpoint(checkpointFile, ckpt);
      if (best) saveCheckpoint(bestFile, ckpt);
    }
  }
  progress.clear();
  log(
    `done: ${checkpointFile} (last), ${bestFile} (lowest source-validation loss); evaluate with npx nx run tools:evaluate -- ${o.out}`,
  );
  trainer.dispose();
});
