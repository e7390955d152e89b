import { checkSettings, runConfigOf, Trainer, type RunConfig } from '@dann/training';
import {
  encodeFrame,
  PROTOCOL_VERSION,
  weightChecksum,
  WIRE_DTYPES,
  type Frame,
  type Message,
  type WireDtype,
} from '@dann/protocol';
import { loadRunData, type DataOptions, type RunData } from './run-data.ts';

/** What a trainer's connection should do after a coordinator's message. */
export type ReplicaOutcome =
  | { readonly kind: 'continue' }
  /** The run is over: close and stop. */
  | { readonly kind: 'finished' }
  /** Reconnecting cannot help (a protocol version mismatch): stop with this sentence. */
  | { readonly kind: 'fatal'; readonly message: string }
  /** This replica fell out of step: reconnect for a fresh state. */
  | { readonly kind: 'resync'; readonly message: string };

export interface ReplicaOptions extends DataOptions {
  readonly name: string;
  readonly backend: { readonly backend: string; readonly device: string };
  /** Sends one encoded frame to the coordinator. */
  readonly send: (frame: Uint8Array) => void;
  readonly log: (line: string) => void;
  /** The run's training sets, already loaded in this process (trainer:train): not loaded a second time. */
  readonly preloaded?: RunData;
}

const CONTINUE: ReplicaOutcome = { kind: 'continue' };

/**
 * The trainer's side of the protocol, over any transport (a WebSocket in trainer:start, a function call in
 * trainer:train): loads the run's data from the settings the coordinator sends, keeps a replica of the weights,
 * computes the gradients of the shards it is assigned and applies the averaged updates.
 */
export class Replica {
  private data: { key: string; run: RunConfig; sets: RunData; paramCount: number; wireDtype: WireDtype } | null = null;
  /** Send a weight checksum after every update whose step is a multiple of this (0: never). */
  private checksumEvery = 0;
  private trainer: Trainer | null = null;
  /** The coordinator's frames, handled one at a time in arrival order (a gradient is read asynchronously). */
  private queue: Promise<unknown> = Promise.resolve();
  /** Counts connections: a gradient computed for an earlier one is not sent on the next. */
  private connection = 0;

  constructor(private readonly o: ReplicaOptions) {}

  /** The first message on every (re)connection. */
  hello(): void {
    this.connection++;
    this.send({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      name: this.o.name,
      backend: this.o.backend.backend,
      device: this.o.backend.device,
    });
  }

  private send(m: Message, payload?: Float32Array): void {
    this.o.send(encodeFrame(m, payload, this.data?.wireDtype ?? 'f32'));
  }

  /** Handles a frame after those received before it; resolves to what the connection should do next. */
  receive(frame: Frame): Promise<ReplicaOutcome> {
    return this.enqueue(() => this.handle(frame));
  }

  private enqueue<T>(work: () => T | Promise<T>): Promise<T> {
    const result = this.queue.then(work);
    this.queue = result.catch(() => {});
    return result;
  }

  private async handle(frame: Frame): Promise<ReplicaOutcome> {
    const msg = frame.message;
    switch (msg.type) {
      case 'welcome': {
        const settings = checkSettings(msg.settings, "the coordinator's run settings");
        const key = JSON.stringify(settings);
        if (this.data?.key !== key) {
          const run = runConfigOf(settings);
          if (!(WIRE_DTYPES as readonly string[]).includes(msg.wireDtype))
            throw new Error(`the coordinator asked for wire dtype ${msg.wireDtype}.`);
          const sets = this.o.preloaded ?? loadRunData(run.data, this.o);
          this.data = { key, run, sets, paramCount: msg.paramCount, wireDtype: msg.wireDtype as WireDtype };
        }
        this.checksumEvery = msg.checksumEvery;
        const { run } = this.data;
        this.o.log(
          `joined: ${run.train.method} ${run.data.source} -> ${run.data.target}, ${msg.paramCount} parameters`,
        );
        return CONTINUE;
      }
      case 'state': {
        if (!this.data) throw new Error('the coordinator sent a state before its welcome.');
        // weights, optimizer moments, and the weights' moving average when the run keeps one
        const [w, m, v, ema = 0] = msg.sizes;
        const p = frame.payload!;
        if (msg.sizes.length < 3 || w + m + v + ema !== p.length)
          throw new Error(
            `the coordinator's state holds ${p.length} floats, not the ${msg.sizes.join(' + ')} it names.`,
          );
        this.trainer?.dispose();
        this.trainer = new Trainer(this.data.run.train, this.data.sets.sourceTrain, this.data.sets.targetTrain, {
          weights: p.subarray(0, w),
          optimizer: {
            step: msg.optimizerStep,
            m: p.subarray(w, w + m),
            v: p.subarray(w + m, w + m + v),
            ema: p.subarray(w + m + v),
          },
          step: msg.step,
        });
        if (this.trainer.net.size !== this.data.paramCount)
          throw new Error(
            `the coordinator's network has ${this.data.paramCount} parameters, this one ${this.trainer.net.size}.`,
          );
        this.o.log(`state at step ${msg.step}`);
        return CONTINUE;
      }
      case 'assign': {
        if (!this.trainer) return CONTINUE;
        const t0 = performance.now();
        const connection = this.connection;
        const r = await this.trainer.gradientFor(msg.source, msg.target, msg.lambda, msg.seed);
        if (connection !== this.connection) return CONTINUE; // assigned on a connection that has since closed
        this.send(
          {
            type: 'gradient',
            step: msg.step,
            shard: msg.shard,
            samples: r.samples,
            labelLoss: r.labelLoss,
            domainLoss: r.domainLoss,
            labelAcc: r.labelAccuracy,
            domainAcc: r.domainAccuracy,
            computeMs: performance.now() - t0,
          },
          r.gradient,
        );
        return CONTINUE;
      }
      case 'update': {
        const t = this.trainer;
        if (!t) return CONTINUE;
        if (t.step !== msg.step)
          return {
            kind: 'resync',
            message: `update for step ${msg.step} but this replica is at step ${t.step}: reconnecting for a fresh state`,
          };
        t.apply(frame.payload!, msg.lr);
        if (this.checksumEvery > 0 && t.step % this.checksumEvery === 0)
          this.send({ type: 'checksum', step: t.step, value: weightChecksum(t.weights) });
        return CONTINUE;
      }
      case 'wait':
        this.o.log(msg.message);
        return CONTINUE;
      case 'leave':
        return msg.code === 'finished' ? { kind: 'finished' } : CONTINUE;
      case 'error':
        if (msg.code === 'protocol-version') return { kind: 'fatal', message: msg.message };
        this.o.log(`coordinator says: ${msg.message}`);
        return CONTINUE;
      default:
        this.o.log(`ignoring unexpected ${msg.type} message`);
        return CONTINUE;
    }
  }

  /** The replica's step (the next it will apply), or null before the first state. */
  get step(): number | null {
    return this.trainer?.step ?? null;
  }

  /** Frees the replica's tensors once the frames before it are handled. */
  dispose(): Promise<void> {
    return this.enqueue(() => {
      this.trainer?.dispose();
      this.trainer = null;
    });
  }
}
