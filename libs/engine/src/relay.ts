import { applyUpdate, checkSettings, runConfigOf, type OptimizerConfig, type OptimizerState } from '@dann/training';
import {
  encodeFrame,
  PROTOCOL_VERSION,
  weightChecksum,
  WIRE_DTYPES,
  type Assign,
  type Frame,
  type Hello,
  type Message,
  type WireDtype,
} from '@dann/protocol';
import { Hub, type HubPolicy, type Peer, type Removed, type RoundResult } from './hub.ts';
import type { ReplicaOutcome } from './replica.ts';

export interface RelayOptions extends Omit<HubPolicy, 'checksumEvery' | 'wireDtype'> {
  /** How the upstream coordinator lists this relay. */
  readonly name: string;
  /** Sends one encoded frame upstream. */
  readonly send: (frame: Uint8Array) => void;
  /** The coordinator above sent a state (after its welcome): trainers can be served from now on. */
  readonly onReady?: () => void;
}

const CONTINUE: ReplicaOutcome = { kind: 'continue' };

/**
 * A reduction-tree node (`coordinator:serve --upstream`): one trainer to the coordinator above it, a coordinator
 * to the trainers below it. Each shard it is assigned is split over its own trainers (Hub); their gradients are
 * combined by its aggregation rule and go up as one gradient, so the coordinator above moves one gradient per
 * relay instead of one per trainer. Updates come down as the bytes the coordinator sent, forwarded to every
 * trainer unchanged, and are applied to the relay's own replica, which serves joiners and checks checksums.
 * The coordinator above keeps the run: its plan, accounting and checkpoints; a relay keeps nothing on disk.
 */
export class Relay {
  private hub: Hub | null = null;
  private run: {
    key: string;
    optimizer: OptimizerConfig;
    paramCount: number;
    wireDtype: WireDtype;
    checksumEvery: number;
  } | null = null;
  private replica: { step: number; epoch: number; weights: Float32Array; optimizer: OptimizerState } | null = null;
  /** Shards assigned from above, in order; the first is running when the hub is busy. */
  private readonly queue: Assign[] = [];
  /** Set once the coordinator above has finished the run. */
  finished = false;

  constructor(private readonly o: RelayOptions) {}

  /** Whether the coordinator above has welcomed this relay and sent its state (trainers can be served). */
  get ready(): boolean {
    return this.hub !== null && this.replica !== null;
  }

  get step(): number | null {
    return this.replica?.step ?? null;
  }

  get paramCount(): number {
    return this.run?.paramCount ?? 0;
  }

  /** The first message on every (re)connection upstream. */
  hello(): void {
    this.sendUp({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      name: this.o.name,
      backend: 'relay',
      device: `${this.hub?.size ?? 0} trainers`,
    });
  }

  private sendUp(m: Message, payload?: Float32Array): void {
    this.o.send(encodeFrame(m, payload, this.run?.wireDtype ?? 'f32'));
  }

  private get hubOrThrow(): Hub {
    if (!this.hub) throw new Error('the relay serves trainers only once the coordinator above has welcomed it.');
    return this.hub;
  }

  join(hello: Hello, peer: Peer): number | null {
    return this.hubOrThrow.join(hello, peer);
  }

  leave(id: number, reason: string): void {
    this.hub?.leave(id, reason);
  }

  /** A decoded frame from trainer `id`; an error sentence for frames that are refused. */
  receive(id: number, frame: Frame): string | null {
    return this.hubOrThrow.receive(id, frame);
  }

  trainers(): ReturnType<Hub['trainers']> {
    return this.hub?.trainers() ?? [];
  }

  nameOf(id: number): string {
    return this.hub?.nameOf(id) ?? `#${id}`;
  }

  get removed(): readonly Removed[] {
    return this.hub?.removed ?? [];
  }

  /** A frame from the coordinator above (`raw`: its bytes as received, forwarded unchanged where they go down). */
  fromUpstream(frame: Frame, raw: Uint8Array): ReplicaOutcome {
    const msg = frame.message;
    switch (msg.type) {
      case 'welcome':
        return this.welcome(msg.settings, msg.paramCount, msg.wireDtype, msg.checksumEvery);
      case 'state': {
        const run = this.run;
        const [w, m, v, ema = 0] = msg.sizes;
        const p = frame.payload!;
        if (!run) throw new Error('the coordinator above sent a state before its welcome.');
        if (msg.sizes.length < 3 || w !== run.paramCount || w + m + v + ema !== p.length)
          throw new Error(`the coordinator above sent a state of ${msg.sizes.join(' + ')} floats for ${p.length}.`);
        const copy = (from: number, n: number) => Float32Array.from(p.subarray(from, from + n));
        this.replica = {
          step: msg.step,
          epoch: msg.epoch,
          weights: copy(0, w),
          optimizer: { step: msg.optimizerStep, m: copy(w, m), v: copy(w + m, v), ema: copy(w + m + v, ema) },
        };
        // Whatever ran belongs to a state that is gone: start over from this one, and so do the trainers.
        this.hub!.abandon();
        this.queue.length = 0;
        this.hub!.broadcast(this.hub!.stateFrame());
        this.o.log(`state at step ${msg.step} from the coordinator above`);
        this.o.onReady?.();
        return CONTINUE;
      }
      case 'assign': {
        if (!this.replica) return CONTINUE;
        if (msg.step !== this.replica.step)
          return { kind: 'resync', message: `assigned step ${msg.step} at step ${this.replica.step}: reconnecting` };
        this.queue.push(msg);
        this.pump();
        return CONTINUE;
      }
      case 'update': {
        const r = this.replica;
        if (!r) return CONTINUE;
        if (msg.step !== r.step)
          return { kind: 'resync', message: `update for step ${msg.step} at step ${r.step}: reconnecting` };
        // The trainers first, then the relay's own replica, as the coordinator does.
        this.hub!.broadcast(raw);
        applyUpdate(r.weights, frame.payload!, r.optimizer, this.run!.optimizer, msg.lr);
        r.step++;
        const every = this.run!.checksumEvery;
        if (every > 0 && r.step % every === 0)
          this.sendUp({ type: 'checksum', step: r.step, value: weightChecksum(r.weights) });
        return CONTINUE;
      }
      case 'wait':
        this.o.log(`coordinator above: ${msg.message}`);
        return CONTINUE;
      case 'leave':
        if (msg.code !== 'finished') return CONTINUE;
        this.finished = true;
        this.hub?.finish();
        return { kind: 'finished' };
      case 'error':
        if (msg.code === 'protocol-version') return { kind: 'fatal', message: msg.message };
        this.o.log(`coordinator above says: ${msg.message}`);
        return CONTINUE;
      default:
        this.o.log(`ignoring an unexpected ${msg.type} message from the coordinator above`);
        return CONTINUE;
    }
  }

  private welcome(settings: Record<string, unknown>, paramCount: number, wire: string, every: number): ReplicaOutcome {
    const checked = checkSettings(settings, "the coordinator's run settings");
    const key = JSON.stringify(checked);
    if (this.run && this.run.key !== key)
      return { kind: 'fatal', message: 'the coordinator above now runs another run; start the relay again for it.' };
    if (!(WIRE_DTYPES as readonly string[]).includes(wire))
      throw new Error(`the coordinator above asked for wire dtype ${wire}.`);
    const wireDtype = wire as WireDtype;
    const optimizer = runConfigOf(checked).train.optimizer;
    this.run = { key, optimizer, paramCount, wireDtype, checksumEvery: every };
    this.hub ??= new Hub({
      ...this.o,
      checksumEvery: every,
      wireDtype,
      settings: checked,
      paramCount,
      replica: {
        state: () => this.replica!,
        checksum: () => (this.replica ? weightChecksum(this.replica.weights) : 0),
      },
      onJoin: () => this.pump(),
      onRound: (r) => this.roundDone(r),
    });
    this.o.log(`welcomed by the coordinator above: ${paramCount} parameters, ${wireDtype} on the wire`);
    return CONTINUE;
  }

  /** Starts the next shard from above once the trainers below are enough. */
  private pump(): void {
    const hub = this.hub;
    if (!hub || this.queue.length === 0 || !hub.ready()) return;
    const a = this.queue[0];
    this.replica!.epoch = a.epoch;
    hub.start({
      step: a.step,
      epoch: a.epoch,
      source: Uint32Array.from(a.source),
      target: Uint32Array.from(a.target),
      lambda: a.lambda,
      seed: a.seed,
    });
  }

  private roundDone(r: RoundResult): void {
    const a = this.queue.shift()!;
    const { samples, labelLoss, domainLoss, labelAcc, domainAcc } = r;
    // The round's wall time is what the coordinator above waited for this shard.
    const gradient = { step: a.step, shard: a.shard, samples, labelLoss, domainLoss, labelAcc, domainAcc };
    this.sendUp({ type: 'gradient', ...gradient, computeMs: r.roundMs }, r.gradient);
    setImmediate(() => this.pump());
  }

  /** Stops the hub's deadline (the relay is stopping). */
  close(): void {
    this.hub?.close();
  }
}
