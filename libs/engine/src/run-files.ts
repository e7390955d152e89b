import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDataset, writeFileAtomic, type ImageSet } from '@dann/data';
import {
  architectureOf,
  DannNetwork,
  evaluate,
  modelWeights,
  objectivesOf,
  saveCheckpoint,
  type Evaluation,
  type RunConfig,
  type RunSettings,
} from '@dann/training';
import { exportOnnx, verificationImages } from '@dann/onnx';
import { AppendLog } from './append-log.ts';
import type { Coordinator, StepMetrics } from './coordinator.ts';
import type { RunData } from './run-data.ts';

/** What every run writes to OUT/config.json, whether one process trained it or many. */
export interface RunRecord {
  /** The flat settings (a valid `--config` file: `trainer:train -- --config runs/NAME/config.json` reruns it). */
  readonly settings: RunSettings;
  readonly run: RunConfig;
  readonly data: {
    sourceTrain: number;
    sourceVal: number;
    targetTrain: number;
    sourceTest: number;
    targetTest: number;
  };
  /** How it ran: the backend of a single-process run, or the coordinator's settings of a distributed one. */
  readonly how: Record<string, unknown>;
}

/** One line of metrics.jsonl per epoch: the run's weights after it, on held-out source images and both test sets. */
export interface EpochLine {
  readonly type: 'epoch';
  readonly epoch: number;
  readonly step: number;
  readonly sourceValLoss: number | null;
  readonly sourceValAcc: number | null;
  readonly sourceTestAcc: number;
  readonly targetTestAcc: number;
  /**
   * Saved as best.bin (model selection without target labels): the lowest source-validation loss so far, or,
   * for a method without a source term (shot, whose adaptation raises that loss), every epoch: the last.
   */
  readonly best: boolean;
}

export interface RunFilesOptions {
  readonly out: string;
  readonly run: RunConfig;
  readonly settings: RunSettings;
  readonly data: RunData;
  readonly how: Record<string, unknown>;
  readonly resume: boolean;
  readonly dataDir?: string;
  readonly log: (line: string) => void;
}

/**
 * A run directory's files, the same for trainer:train and coordinator:serve: config.json, metrics.jsonl (a line
 * per step and per epoch), best.bin (lowest source-validation loss), results.md and the exported model.onnx.
 * (checkpoint.bin is the coordinator's.) tools:evaluate, tools:plot and tools:export-onnx read any of them.
 */
export class RunFiles {
  readonly metricsFile: string;
  private readonly metrics: AppendLog;
  private readonly sourceTest: ImageSet;
  private readonly targetTest: ImageSet;
  private bestValLoss = Infinity;
  /** best.bin follows the source-validation loss only for methods with a source term (not shot). */
  private readonly selectBySource: boolean;
  private latest: { step: number; source: Evaluation; target: Evaluation } | null = null;

  constructor(private readonly o: RunFilesOptions) {
    const { out, run } = o;
    mkdirSync(out, { recursive: true });
    this.selectBySource = objectivesOf(run.train).some((t) => t.needsSource);
    const test = { limit: run.data.evalLimit, dataDir: o.dataDir };
    this.sourceTest = loadDataset(run.data.source, 'test', test);
    this.targetTest = loadDataset(run.data.target, 'test', test);
    this.metricsFile = join(out, 'metrics.jsonl');
    if (!o.resume) writeFileSync(this.metricsFile, '', { mode: 0o600 });
    this.metrics = new AppendLog(this.metricsFile, o.log);
    const record: RunRecord = {
      settings: o.settings,
      run,
      data: {
        sourceTrain: o.data.sourceTrain.count,
        sourceVal: o.data.sourceVal.count,
        targetTrain: o.data.targetTrain.count,
        sourceTest: this.sourceTest.count,
        targetTest: this.targetTest.count,
      },
      how: o.how,
    };
    writeFileSync(join(out, 'config.json'), `${JSON.stringify(record, null, 2)}\n`);
  }

  /**
   * On --resume: drops the lines of steps after the checkpoint (they are redone) and takes the best
   * source-validation loss so far from the epoch lines kept.
   */
  resumeAt(step: number): void {
    if (!existsSync(this.metricsFile)) return;
    const lines = readFileSync(this.metricsFile, 'utf8').split('\n').filter(Boolean);
    const kept = lines.filter((l) => {
      try {
        const m = JSON.parse(l) as { type?: string; step?: number; sourceValLoss?: number | null };
        const keep = m.type === 'epoch' ? m.step! <= step : m.step! < step;
        if (keep && m.type === 'epoch' && m.sourceValLoss != null)
          this.bestValLoss = Math.min(this.bestValLoss, m.sourceValLoss);
        return keep;
      } catch {
        return false;
      }
    });
    writeFileAtomic(this.metricsFile, Buffer.from(kept.map((l) => `${l}\n`).join('')));
    if (lines.length > kept.length)
      this.o.log(
        `metrics.jsonl: dropped ${lines.length - kept.length} line(s) of steps after the checkpoint; they are redone`,
      );
  }

  /** After every step: its line, and at an epoch's end the evaluation (and best.bin). */
  async step(m: StepMetrics, coordinator: Coordinator): Promise<void> {
    this.metrics.append(`${JSON.stringify({ type: 'step', ...m })}\n`);
    if (coordinator.step % coordinator.plan.stepsPerEpoch === 0) await this.epoch(coordinator);
  }

  private async evaluate(weights: Float32Array, step: number) {
    const net = new DannNetwork(architectureOf(this.o.run.train), weights);
    const e = {
      step,
      source: await evaluate(net, this.sourceTest),
      target: await evaluate(net, this.targetTest),
      val: this.o.data.sourceVal.count ? await evaluate(net, this.o.data.sourceVal) : null,
    };
    net.dispose();
    this.latest = e;
    return e;
  }

  private async epoch(coordinator: Coordinator): Promise<void> {
    const { step } = coordinator;
    const e = await this.evaluate(modelWeights(coordinator.weights, coordinator.optimizer), step);
    const best = this.selectBySource ? e.val !== null && e.val.loss < this.bestValLoss : true;
    if (best) {
      this.bestValLoss = Math.min(this.bestValLoss, e.val?.loss ?? Infinity);
      saveCheckpoint(join(this.o.out, 'best.bin'), coordinator.snapshot());
    }
    const epoch = step / coordinator.plan.stepsPerEpoch;
    const line: EpochLine = {
      type: 'epoch',
      epoch,
      step,
      sourceValLoss: e.val?.loss ?? null,
      sourceValAcc: e.val?.accuracy ?? null,
      sourceTestAcc: e.source.accuracy,
      targetTestAcc: e.target.accuracy,
      best,
    };
    this.metrics.append(`${JSON.stringify(line)}\n`);
    this.o.log(
      `epoch ${epoch}/${this.o.run.train.epochs}: source test ${e.source.accuracy.toFixed(4)}, target test ${e.target.accuracy.toFixed(4)}${e.val ? `, source val loss ${e.val.loss.toFixed(4)} acc ${e.val.accuracy.toFixed(4)}` : ''}${best ? ' (best so far)' : ''}`,
    );
  }

  /** The finished run: results.md (the last weights on the test sets) and model.onnx, verified against tfjs. */
  async finish(coordinator: Coordinator): Promise<void> {
    const { out, run } = this.o;
    const { source, target } = run.data;
    const { method, preset } = run.train;
    const { source: s, target: t } =
      this.latest?.step === coordinator.step
        ? this.latest
        : await this.evaluate(modelWeights(coordinator.weights, coordinator.optimizer), coordinator.step);
    const table = `| network | method | pair | source acc | target acc |\n| --- | --- | --- | --- | --- |\n| ${preset} | ${method} | ${source} -> ${target} | ${s.accuracy.toFixed(4)} | ${t.accuracy.toFixed(4)} |`;
    const model = coordinator.optimizer.ema.length
      ? 'the mean teacher (the moving average of the weights) after the last step'
      : 'the weights after the last step';
    const selection = this.selectBySource
      ? 'the epoch with the lowest source-validation loss'
      : 'the last epoch (this method has no source term)';
    writeFileSync(
      join(out, 'results.md'),
      `${table}\n\nModel: ${model}, exported as model.onnx. best.bin: ${selection}. No target labels chose either.\n`,
    );
    this.o.log(
      `\n${table}\n\nfull evaluation and plots: npx nx run tools:evaluate -- ${out}; npx nx run tools:plot -- ${out}`,
    );
    const exported = await exportOnnx({
      arch: architectureOf(run.train),
      weights: modelWeights(coordinator.weights, coordinator.optimizer),
      file: join(out, 'model.onnx'),
      training: { source, target, method, network: preset, step: coordinator.step },
      accuracy: { source: s.accuracy, target: t.accuracy, testImages: Math.min(s.count, t.count) },
      verify: verificationImages([source, target], 256, this.o.dataDir),
    });
    const check = exported.sidecar.verification;
    this.o.log(
      `ONNX: ${exported.file} (${(exported.bytes / 1024).toFixed(0)} KiB; onnxruntime vs tfjs on ${check.count} test images: max |Δprob| ${check.maxAbsDiff.toExponential(1)}, same top-1); metadata ${exported.sidecarFile}`,
    );
    this.o.log(
      `classify images: npx nx run edge-demo:classify -- --model ${exported.file} digit.png; draw digits: npx nx run edge-demo:serve -- --model ${exported.file}`,
    );
  }
}
