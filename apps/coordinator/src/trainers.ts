/**
 * The trainer-facing server of a coordinator or a relay: HTTP(S) with the status page, the WebSocket upgrade behind
 * the token, the connection limits, pings, frame decoding with size limits, and each peer's messages handed to the
 * node that owns the trainers (a Coordinator or a Relay). Whatever one peer sends ends only that peer's connection.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Peer } from '@dann/engine';
import { decodeFrame, ProtocolError, encodeFrame, type Frame, type ErrorCode, type Hello } from '@dann/protocol';
import { ConnectionGate, RateLimit, RefusalLog, connectionLimits, tokenMatches } from './guard.ts';
import { statusPage } from './status.ts';

/** A socket must present the token (WebSocket upgrade) or finish its HTTP request within this time. */
const UPGRADE_DEADLINE_MS = 10_000;
const PING_INTERVAL_MS = 5_000;
/** Largest header a trainer's frame may have (its longest message is hello: three short strings). */
const TRAINER_HEADER_BYTES = 1 << 16;

/** What owns the trainers: a Coordinator or a Relay. */
export interface TrainerNode {
  join(hello: Hello, peer: Peer): number | null;
  leave(id: number, reason: string): void;
  /** An error sentence for a frame that is refused. */
  receive(id: number, frame: Frame): string | null;
  nameOf(id: number): string;
}

export interface ServeOptions {
  /** The network's parameter count: it sizes the largest frame a trainer may send and the most queued to one. */
  readonly paramCount: number;
  readonly token: string;
  /** wss:// and https:// with this material; null for ws://. */
  readonly tls: { cert: Buffer; key: Buffer } | null;
  readonly host: string;
  /** `0`: any free port. */
  readonly port: string;
  /** A peer silent for longer than this (and two pings) is gone. */
  readonly stepTimeoutMs: number;
  readonly maxConnections: number;
  /** Where coordinator.json (the URL, the pid) is written once listening. */
  readonly out: string;
  readonly log: (line: string) => void;
  /** What the log calls this process: coordinator or relay. */
  readonly role: string;
  /** The JSON of /status, given the connection counts. */
  readonly status: (connections: Record<string, number>) => unknown;
}

/** Listens for trainers until `close()`; resolves once listening, with the URL trainers connect to. */
export async function serveTrainers(node: TrainerNode, o: ServeOptions): Promise<{ url: string; close(): void }> {
  const log = o.log;
  // Largest frame a trainer may send: a gradient (header + one float per parameter) with room to spare.
  const maxPayload = o.paramCount * 4 + (1 << 20);
  // Most bytes queued to one peer (a state frame is up to 4 floats per parameter): a peer that does not read is dropped.
  const maxBuffered = 2 * o.paramCount * 16 + (16 << 20);
  const gate = new ConnectionGate(connectionLimits(o.maxConnections));
  const refusals = new RefusalLog(log);
  const limits = {
    headersTimeout: UPGRADE_DEADLINE_MS,
    requestTimeout: UPGRADE_DEADLINE_MS,
    connectionsCheckingInterval: 1000,
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET' && req.url === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(o.status({ ...gate.counts, refused: refusals.total })));
    } else if (req.method === 'GET' && (req.url === '/' || req.url === '/index.html')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(statusPage());
    } else {
      res.writeHead(404).end();
    }
  };
  const server = o.tls
    ? createHttpsServer({ ...limits, ...o.tls, handshakeTimeout: UPGRADE_DEADLINE_MS }, handler)
    : createHttpServer(limits, handler);
  // Sockets idle before they upgrade (or between HTTP requests) are closed; ws clears this on upgrade.
  server.timeout = UPGRADE_DEADLINE_MS;
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload });
  // Every socket counts against the limits until it presents the token; one that neither does so nor
  // finishes an HTTP request within the deadline is closed, and a new one evicts the oldest idle ones.
  // Keyed by the peer's address and port: with TLS the upgrade sees the TLS socket, not the raw one.
  const sockets = new Map<string, Socket>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '?';
    const key = `${address}:${socket.remotePort}`;
    const evict = gate.admit(key, address);
    if (evict === null) {
      refusals.refused(
        'over the connection limit',
        `${address}: ${gate.limits.total} trainers and pages are connected already`,
      );
      return void socket.destroy();
    }
    for (const victim of evict) {
      refusals.refused(
        'evicted while idle',
        `${victim}: closed an unauthenticated socket to make room (${gate.limits.pending} at most, ${gate.limits.pendingPerAddress} per address)`,
      );
      sockets.get(victim)?.destroy();
      sockets.delete(victim);
    }
    sockets.set(key, socket);
    socket.once('close', () => {
      gate.closed(key);
      if (sockets.get(key) === socket) sockets.delete(key);
    });
  });
  server.on('error', (err) => log(`server error (survived): ${err.message}`));
  server.on('upgrade', (req, socket, head) => {
    if (!tokenMatches(o.token, req.headers.authorization)) {
      refusals.refused('wrong token', `${req.socket.remoteAddress}: wrong or missing token`);
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n');
      return;
    }
    gate.authenticated(`${req.socket.remoteAddress}:${req.socket.remotePort}`);
    wss.handleUpgrade(req, socket, head, (ws) => connection(ws));
  });

  function connection(ws: WebSocket): void {
    let id: number | null = null;
    const limit = new RateLimit(50, 100);
    const who = () => (id === null ? '(no hello)' : node.nameOf(id));
    const peer = {
      send: (b: Uint8Array) => {
        if (ws.readyState !== ws.OPEN) return;
        if (ws.bufferedAmount + b.length > maxBuffered) {
          log(`trainer ${who()} does not read: ${(ws.bufferedAmount / 2 ** 20).toFixed(0)} MiB queued; closing it`);
          return void ws.terminate(); // 'close' takes it out of the run
        }
        ws.send(b);
      },
      close: (code: number, reason: string) => ws.close(code, reason),
    };
    const refuse = (why: string, code: ErrorCode = 'refused') => {
      if (ws.readyState === ws.OPEN) ws.send(encodeFrame({ type: 'error', code, message: why }));
      ws.close(1008, why.slice(0, 120));
      // Out of the run at once: nothing more is assigned to it while the close handshake runs.
      if (id !== null) node.leave(id, `refused: ${why}`);
      id = null;
    };
    const helloTimer = setTimeout(() => id === null && refuse('no hello within 10 s.'), 10_000);
    // A peer silent for longer than a shard may take (the step deadline: a trainer blocked in a long step, a GPU
    // compiling its kernels, cannot answer pings meanwhile) is gone. When this process was busy (the per-epoch
    // evaluation holds the event loop for seconds), the pongs may still be unread: ask again.
    const silenceMs = Math.max(2 * PING_INTERVAL_MS, o.stepTimeoutMs);
    let lastTick = Date.now();
    let lastPong = lastTick;
    const ping = setInterval(() => {
      const now = Date.now();
      const stalled = now - lastTick > 1.5 * PING_INTERVAL_MS;
      lastTick = now;
      if (!stalled && now - lastPong > silenceMs) return ws.terminate();
      ws.ping();
    }, PING_INTERVAL_MS);
    ws.on('pong', () => (lastPong = Date.now()));
    const handle = (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return refuse('text frames are not part of the protocol.', 'bad-frame');
      let frame: Frame;
      try {
        frame = decodeFrame(data, { maxPayload: o.paramCount, maxHeaderBytes: TRAINER_HEADER_BYTES });
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        refusals.refused('bad frame', `trainer ${who()}: ${err.message}`);
        return refuse(err.message, 'bad-frame');
      }
      if (!frame.payload && !limit.take()) return refuse('too many control messages.');
      if (id === null) {
        if (frame.message.type !== 'hello') return refuse('the first message must be hello.');
        clearTimeout(helloTimer);
        id = node.join(frame.message as Hello, peer);
        return;
      }
      const why = node.receive(id, frame);
      if (why) {
        refusals.refused(`refused ${frame.message.type}`, `trainer ${who()}: ${why}`);
        if (frame.message.type === 'gradient') refuse(why);
        else peer.send(encodeFrame({ type: 'error', code: 'refused', message: why }));
      }
    };
    ws.on('message', (data, isBinary) => {
      if (ws.readyState !== ws.OPEN) return; // refused and closing
      // Whatever one peer's message does, only that peer's connection ends.
      try {
        handle(data as Buffer, isBinary);
      } catch (err) {
        log(
          `trainer ${who()}: closing the connection after an internal error on its message: ${(err as Error).message}`,
        );
        refuse('internal error on this message.');
      }
    });
    ws.on('close', () => {
      clearTimeout(helloTimer);
      clearInterval(ping);
      if (id !== null) node.leave(id, 'disconnected');
    });
    ws.on('error', (err) => log(`trainer ${who()}: socket error: ${err.message}`));
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(err.code === 'EADDRINUSE' ? `port ${o.port} on ${o.host} is in use; pass --port.` : err.message),
      ),
    );
    server.listen(Number(o.port), o.host, resolve);
  });
  const address = server.address() as { port: number };
  const url = `${o.tls ? 'wss' : 'ws'}://${o.host}:${address.port}`;
  writeFileSync(join(o.out, 'coordinator.json'), JSON.stringify({ url, pid: process.pid }) + '\n');
  log(`${o.role} listening on ${url} (status page ${o.tls ? 'https' : 'http'}://${o.host}:${address.port}/)`);
  return {
    url,
    close: () => {
      wss.close();
      server.close();
    },
  };
}
