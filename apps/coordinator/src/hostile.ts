/**
 * A hostile-peer scenario on real processes over loopback, for the test suite (small counts) and the
 * soak command (large ones): a coordinator under a low open-file limit, two honest trainers, and while
 * they train, at once: random and mutated frames (among them the 78-byte state frame before hello and
 * MessagePack header bombs), idle TCP connections from many loopback addresses beyond the limit, a
 * peer that sends wrong checksums and stops reading, and a peer that answers its shards with the last
 * averaged gradient x -1e6 and rejoins when dropped. `attack: false` runs the same job clean.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import WebSocket from 'ws';
import { decodeCheckpoint } from '@dann/training';
import { decodeFrame, encodeFrame, PROTOCOL_VERSION, type Frame } from '@dann/protocol';
import { run, runScript, SERVE, START, until } from './testing/processes.ts';

export interface ScenarioOptions {
  readonly out: string;
  readonly attack: boolean;
  /** The coordinator's open-file limit (soft and hard): the idle connections go beyond it. */
  readonly fileLimit: number;
  readonly idleConnections: number;
  /** Loopback addresses (127.0.0.2, ...) the idle connections come from. */
  readonly idleAddresses: number;
  /** Connections that each send hello and then 20 random or mutated frames. */
  readonly fuzzConnections: number;
  readonly headerBombs: number;
  /** How often the poisoning peer joins again after being dropped. */
  readonly poisonRejoins: number;
  /** Seconds the non-reading peer sends wrong checksums. */
  readonly memoryAttackSeconds: number;
  /** coordinator:serve options of the training job (method, data, schedule). */
  readonly job: readonly string[];
  readonly log?: (line: string) => void;
}

export interface ScenarioReport {
  readonly exitCode: number | null;
  readonly trainerExitCodes: (number | null)[];
  readonly seconds: number;
  readonly accuracy: { source: number; target: number } | null;
  readonly accounting: Record<string, { once: number; never: number; more: number }> | null;
  /** Peak resident memory of the coordinator (sampled every 100 ms), MiB. */
  readonly peakRssMiB: number;
  readonly steps: number;
  /** Every applied average had a finite loss and gradient norm (nothing poisoned one with NaN or Infinity). */
  readonly finiteAverages: boolean;
  /** Steps of the checkpoints seen during the run (checkpoint-every is huge here: all but the first and last are by time). */
  readonly checkpointSteps: number[];
  readonly coordinatorLines: number;
  readonly refusedLines: number;
  readonly tokenInLog: boolean;
  readonly logMode: number;
  readonly idle: { opened: number; closedByCoordinator: number; failedToOpen: number };
  readonly fuzz: { frames: number; closes: number };
  readonly bombs: { sent: number; refused: number };
  readonly memory: { checksums: number; closeCode: number | null };
  readonly poison: { joins: number; gradients: number; closeCodes: number[] };
  readonly statusMaxMs: number;
  readonly output: string;
}

const TOKEN = 'hostile-test-token-0123456789';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const rssKiB = (pid: number) => {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
};

function authed(url: string): WebSocket {
  return new WebSocket(url, { headers: { authorization: `Bearer ${TOKEN}` }, perMessageDeflate: false });
}

const hello = (name: string) =>
  encodeFrame({ type: 'hello', protocol: PROTOCOL_VERSION, name, backend: 'none', device: 'none' });

/** The training job of the scenario: DANN MNIST -> MNIST-M-style on the `paper` network, sized by the caller. */
export function scenarioJob(size: {
  limit: number;
  valCount: number;
  batchSize: number;
  epochs: number;
  evalLimit: number;
  stepTimeoutMs: number;
}): string[] {
  return [
    ...['--method', 'dann', '--source', 'mnist', '--target', 'mnistm', '--preset', 'paper', '--lambda-max', '0.1'],
    ...['--limit', String(size.limit), '--val-count', String(size.valCount), '--batch-size', String(size.batchSize)],
    ...[
      '--epochs',
      String(size.epochs),
      '--eval-limit',
      String(size.evalLimit),
      '--step-timeout',
      String(size.stepTimeoutMs),
    ],
  ];
}

/** Runs the scenario; resolves when the coordinator and the honest trainers have exited. */
export async function runScenario(o: ScenarioOptions): Promise<ScenarioReport> {
  const log = o.log ?? (() => {});
  const t0 = Date.now();
  const tokenFile = join(o.out, 'token.secret');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  const coordinator = run('bash', [
    '-c',
    `ulimit -n ${o.fileLimit} && exec "$0" "$@"`,
    process.execPath,
    '--import',
    'tsx',
    SERVE,
    ...o.job,
    '--port',
    '0',
    '--token-file',
    tokenFile,
    '--out',
    o.out,
    '--min-trainers',
    '2',
    '--checkpoint-every',
    '100000',
    '--checkpoint-seconds',
    '2',
  ]);
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, rssKiB(coordinator.child.pid!))), 100);
  let done = false;
  void coordinator.exit.then(() => (done = true));
  const info = join(o.out, 'coordinator.json');
  const url = await until('the coordinator to listen', () =>
    done
      ? 'exited'
      : existsSync(info) &&
        coordinator.output.includes('listening') &&
        (JSON.parse(readFileSync(info, 'utf8')) as { url: string }).url,
  );
  if (url === 'exited') throw new Error(`the coordinator exited before listening:\n${coordinator.output}`);
  const http = url.replace('ws://', 'http://');
  const port = Number(new URL(http).port);
  const honest = ['honest-a', 'honest-b'].map((name) =>
    runScript(START, ['--coordinator', url, '--name', name, '--backend', 'wasm'], {
      env: { ...process.env, DANN_TOKEN: TOKEN },
    }),
  );
  const metrics = join(o.out, 'metrics.jsonl');
  const stepsDone = () =>
    existsSync(metrics)
      ? readFileSync(metrics, 'utf8')
          .split('\n')
          .filter((l) => l.includes('"type":"step"')).length
      : 0;
  await until('two honest trainers in a step', () => done || stepsDone() >= 2, 180_000);

  const report = {
    idle: { opened: 0, closedByCoordinator: 0, failedToOpen: 0 },
    fuzz: { frames: 0, closes: 0 },
    bombs: { sent: 0, refused: 0 },
    memory: { checksums: 0, closeCode: null as number | null },
    poison: { joins: 0, gradients: 0, closeCodes: [] as number[] },
    statusMaxMs: 0,
  };
  const checkpointSteps = new Set<number>();
  const watchCheckpoint = setInterval(() => {
    try {
      checkpointSteps.add(decodeCheckpoint(readFileSync(join(o.out, 'checkpoint.bin'))).step);
    } catch {
      // being replaced right now; the next look will tell
    }
  }, 500);
  const statusProbe = setInterval(async () => {
    const s = Date.now();
    try {
      await (await fetch(`${http}/status`)).json();
      report.statusMaxMs = Math.max(report.statusMaxMs, Date.now() - s);
    } catch {
      // the coordinator is finishing
    }
  }, 250);
  const idleSockets: Socket[] = [];
  if (o.attack) {
    log(
      `attacking: ${o.idleConnections} idle connections, ${o.fuzzConnections * 20} fuzz frames, ${o.headerBombs} header bombs, a non-reading peer, a poisoning peer`,
    );
    await Promise.all([
      idleAttack(port, o, report.idle, idleSockets),
      fuzzAttack(url, o.fuzzConnections, report.fuzz),
      bombAttack(url, o.headerBombs, report.bombs),
      memoryAttack(url, http, o.memoryAttackSeconds, report.memory),
      poisonAttack(url, o.poisonRejoins, report.poison, () => done),
    ]);
    log('attacks over; waiting for the run to finish');
  }
  const exitCode = await coordinator.exit;
  const trainerExitCodes = await Promise.all(honest.map((t) => t.exit));
  clearInterval(sampler);
  clearInterval(watchCheckpoint);
  clearInterval(statusProbe);
  for (const s of idleSockets) s.destroy();
  const read = (name: string) => (existsSync(join(o.out, name)) ? readFileSync(join(o.out, name), 'utf8') : '');
  const row = /\|\s*([0-9.]+)\s*\|\s*([0-9.]+)\s*\|\s*$/m.exec(read('results.md'));
  const lines = coordinator.output.split('\n').filter(Boolean);
  return {
    exitCode,
    trainerExitCodes,
    seconds: (Date.now() - t0) / 1000,
    accuracy: row ? { source: Number(row[1]), target: Number(row[2]) } : null,
    accounting: read('accounting.json') ? JSON.parse(read('accounting.json')) : null,
    peakRssMiB: peak / 1024,
    steps: stepsDone(),
    finiteAverages: read('metrics.jsonl')
      .split('\n')
      .filter((l) => l.includes('"type":"step"'))
      .every((l) => {
        const m = JSON.parse(l) as { labelLoss: number; gradNorm: number };
        return Number.isFinite(m.labelLoss) && Number.isFinite(m.gradNorm);
      }),
    checkpointSteps: [...checkpointSteps].sort((a, b) => a - b),
    coordinatorLines: lines.length,
    refusedLines: lines.filter((l) => l.includes('refused')).length,
    tokenInLog: read('coordinator.log').includes(TOKEN) || coordinator.output.includes(TOKEN),
    logMode: statSync(join(o.out, 'coordinator.log')).mode & 0o777,
    ...report,
    output: coordinator.output,
  };
}

/** Plain TCP connections that never send a byte, from many loopback addresses; counts those the coordinator closes. */
async function idleAttack(port: number, o: ScenarioOptions, r: ScenarioReport['idle'], keep: Socket[]): Promise<void> {
  const batch = 200;
  const open = new Set<Socket>();
  for (let i = 0; i < o.idleConnections; i += batch) {
    await Promise.all(
      Array.from(
        { length: Math.min(batch, o.idleConnections - i) },
        (_, k) =>
          new Promise<void>((resolve) => {
            const s = connect({ host: '127.0.0.1', port, localAddress: `127.0.0.${2 + ((i + k) % o.idleAddresses)}` });
            keep.push(s);
            s.on('connect', () => {
              r.opened++;
              open.add(s);
              resolve();
            });
            s.on('close', () => {
              if (open.delete(s)) r.closedByCoordinator++;
            });
            s.on('error', () => {
              if (open.has(s)) return; // reset after connecting: counted by 'close'
              r.failedToOpen++;
              resolve();
            });
          }),
      ),
    );
  }
  await sleep(12_000); // past the coordinator's 10 s deadline for unauthenticated sockets
  // A connection the kernel completed but dropped from a full accept queue never reached the coordinator, yet
  // looks open here until it sends something: one byte each, and such a phantom is reset at once. A socket the
  // coordinator really holds past its deadline stays open, and the report shows it.
  for (const s of open) s.write('x');
  await sleep(1500);
}

/** Authenticated connections that send hello and then random or mutated frames (one run of 20 each). */
async function fuzzAttack(url: string, connections: number, r: ScenarioReport['fuzz']): Promise<void> {
  let seed = 7;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  // The 78-byte frame that once stopped the coordinator: a state header and 4 payload bytes, before hello.
  const unaligned = encodeFrame({ type: 'state', step: 0, epoch: 0, optimizerStep: 0, sizes: [1] }, Float32Array.of(1));
  const seeds = [
    unaligned,
    encodeFrame(
      {
        type: 'gradient',
        step: 0,
        shard: 0,
        samples: 8,
        labelLoss: 1,
        domainLoss: 1,
        labelAcc: 0,
        domainAcc: 0,
        computeMs: 1,
      },
      new Float32Array(64),
    ),
    encodeFrame({ type: 'checksum', step: 1, value: 5 }),
    encodeFrame({ type: 'assign', step: 0, shard: 0, epoch: 0, source: [1], target: [1], lambda: 0, seed: 1 }),
    hello('fuzz'),
  ];
  for (let c = 0; c < connections; c++) {
    await new Promise<void>((resolve) => {
      const ws = authed(url);
      ws.on('open', () => {
        if (c % 2 === 0) ws.send(unaligned);
        else ws.send(hello(`fuzz-${c}`));
        for (let k = 0; k < 20; k++, r.frames++) {
          let frame: Uint8Array;
          if (rand() < 0.3)
            frame = Uint8Array.from({ length: Math.floor(rand() * 200) }, () => Math.floor(rand() * 256));
          else {
            frame = seeds[Math.floor(rand() * seeds.length)].slice();
            for (let m = 0, n = Math.floor(rand() * 3); m < n; m++)
              frame[Math.floor(rand() * frame.length)] = Math.floor(rand() * 256);
          }
          ws.send(frame);
        }
        setTimeout(() => ws.close(), 20);
      });
      ws.on('close', () => {
        r.closes++;
        resolve();
      });
      ws.on('error', () => resolve());
    });
  }
}

/** Frames whose headers are MessagePack maps of 100,000 keys. */
async function bombAttack(url: string, count: number, r: ScenarioReport['bombs']): Promise<void> {
  // MessagePack by hand: a map32 of 100,000 entries "k<i>" (fixstr) -> 0 (positive fixint).
  const entries = Array.from({ length: 100_000 }, (_, i) => `k${i}`);
  const header = new Uint8Array(5 + entries.reduce((n, k) => n + 2 + k.length, 0));
  header[0] = 0xdf;
  new DataView(header.buffer).setUint32(1, entries.length);
  let at = 5;
  for (const k of entries) {
    header[at++] = 0xa0 | k.length;
    for (const ch of k) header[at++] = ch.charCodeAt(0);
    header[at++] = 0;
  }
  const frame = new Uint8Array(16 + ((header.length + 3) & ~3));
  const view = new DataView(frame.buffer);
  view.setUint32(0, 0x4e4e4144, true);
  view.setUint8(4, 1);
  view.setUint32(8, header.length, true);
  frame.set(header, 16);
  await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<void>((resolve) => {
          const ws = authed(url);
          ws.on('open', () => {
            ws.send(frame);
            r.sent++;
          });
          ws.on('close', (code) => {
            if (code === 1008) r.refused++;
            resolve();
          });
          ws.on('error', () => resolve());
        }),
    ),
  );
}

/** Joins, stops reading, and sends a wrong checksum for the current step 40 times a second. */
async function memoryAttack(url: string, http: string, seconds: number, r: ScenarioReport['memory']): Promise<void> {
  const ws = authed(url);
  const closed = new Promise<void>((resolve) =>
    ws.on('close', (code) => {
      r.closeCode = code;
      resolve();
    }),
  );
  ws.on('error', () => {});
  await new Promise((resolve) => {
    ws.on('open', resolve);
    ws.on('close', resolve);
  });
  if (ws.readyState !== ws.OPEN) return;
  ws.send(hello('hoarder'));
  ws.pause();
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end && ws.readyState === ws.OPEN) {
    let step = 0;
    try {
      step = ((await (await fetch(`${http}/status`)).json()) as { step: number }).step;
    } catch {
      break;
    }
    for (let i = 0; i < 10 && ws.readyState === ws.OPEN; i++, r.checksums++)
      ws.send(encodeFrame({ type: 'checksum', step, value: 12345 + i }));
    await sleep(250);
  }
  ws.terminate();
  await closed;
}

/** Answers every shard with the last averaged gradient x -1e6; joins again (up to `rejoins` times) when dropped. */
async function poisonAttack(
  url: string,
  rejoins: number,
  r: ScenarioReport['poison'],
  finished: () => boolean,
): Promise<void> {
  for (let join = 0; join <= rejoins && !finished(); join++) {
    r.joins++;
    await new Promise<void>((resolve) => {
      const ws = authed(url);
      let last: Float32Array | null = null;
      ws.on('open', () => ws.send(hello('poisoner')));
      ws.on('message', (raw) => {
        let frame: Frame;
        try {
          frame = decodeFrame(raw as Buffer, { maxPayload: 1 << 26 });
        } catch {
          return;
        }
        const m = frame.message;
        if (m.type === 'state') last = new Float32Array(m.sizes[0]).fill(1e-3);
        if (m.type === 'update') last = Float32Array.from(frame.payload!);
        if (m.type === 'assign' && last) {
          const poison = Float32Array.from(last, (x) => x * -1e6);
          r.gradients++;
          ws.send(
            encodeFrame(
              {
                type: 'gradient',
                step: m.step,
                shard: m.shard,
                samples: m.source.length,
                labelLoss: 0.1,
                domainLoss: 0.7,
                labelAcc: 1,
                domainAcc: 0.5,
                computeMs: 5,
              },
              poison,
            ),
          );
        }
      });
      ws.on('close', (code) => {
        r.closeCodes.push(code);
        resolve();
      });
      ws.on('error', () => {});
    });
  }
}
