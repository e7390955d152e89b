import { decodeFrame, PROTOCOL_VERSION } from '@dann/protocol';
import type { RunConfig, RunSettings } from '@dann/training';
import { Coordinator, type CoordinatorOptions, type StepMetrics } from './coordinator.ts';
import { Replica } from './replica.ts';
import { RunFiles } from './run-files.ts';
import { loadRunData, warmStartWeights } from './run-data.ts';

export interface LocalRunOptions {
  readonly run: RunConfig;
  readonly settings: RunSettings;
  readonly out: string;
  readonly resume: boolean;
  readonly backend: { readonly backend: string; readonly device: string };
  readonly dataDir?: string;
  readonly log: (line: string) => void;
  /** After every step (a progress line). */
  readonly onStep?: (m: StepMetrics, c: Coordinator) => void;
}

/**
 * A training run in one process: the distributed engine (Coordinator: plan, average, update, checkpoints) with
 * one in-process trainer (Replica) on the other end of a function call instead of a socket. The frames are the
 * wire's, so a step here is exactly a one-trainer step of coordinator:serve.
 */
export async function runLocal(o: LocalRunOptions): Promise<Coordinator> {
  const data = loadRunData(o.run.data, { dataDir: o.dataDir, log: o.log });
  const files = new RunFiles({ ...o, data, how: { backend: o.backend, trainers: 'one, in process' } });
  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));
  let failure: unknown = null;
  const fail = (err: unknown) => {
    failure ??= err;
    finished();
  };
  const options: CoordinatorOptions = {
    run: o.run,
    settings: o.settings,
    checksumEvery: 0, // one replica, in this process: nothing to compare
    counts: { source: data.sourceTrain.count, target: data.targetTrain.count },
    initialWeights: o.resume ? undefined : warmStartWeights(o.run, o.log),
    minTrainers: 1,
    stepTimeoutMs: 2 ** 31 - 1, // one trainer in this process: nothing to drop it for
    aggregate: 'mean',
    clipFactor: 1,
    maxOutlierSteps: 0,
    resyncIntervalMs: 0,
    wireDtype: 'f32',
    out: o.out,
    resume: o.resume,
    log: o.log,
    onDone: () => finished(),
    onStep: async (m) => {
      await files.step(m, coordinator);
      o.onStep?.(m, coordinator);
    },
    onError: fail,
  };
  const coordinator = new Coordinator(options);
  if (o.resume) files.resumeAt(coordinator.step);
  // Each side's frames reach the other on a later turn of the event loop, as over a socket.
  const replica: Replica = new Replica({
    name: 'local',
    backend: o.backend,
    preloaded: data,
    log: () => {},
    send: (bytes) =>
      setImmediate(() => {
        try {
          const why = coordinator.receive(id, decodeFrame(bytes, { maxPayload: coordinator.paramCount }));
          if (why) throw new Error(`the coordinator refused the local trainer's message: ${why}`);
        } catch (err) {
          fail(err);
        }
      }),
  });
  const peer = {
    send: (bytes: Uint8Array) =>
      setImmediate(() => {
        Promise.resolve()
          .then(() => replica.receive(decodeFrame(bytes, { maxPayload: 4 * coordinator.paramCount })))
          .then((outcome) => {
            if (outcome.kind === 'fatal' || outcome.kind === 'resync') throw new Error(outcome.message);
          })
          .catch(fail);
      }),
    close: () => {},
  };
  const id = coordinator.join({ type: 'hello', protocol: PROTOCOL_VERSION, name: 'local', ...o.backend }, peer)!;
  await done;
  await replica.dispose();
  if (failure) {
    coordinator.close();
    throw failure;
  }
  await files.finish(coordinator);
  return coordinator;
}
