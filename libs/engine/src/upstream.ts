import WebSocket from 'ws';
import { decodeFrame, ProtocolError, type Frame } from '@dann/protocol';
import type { ReplicaOutcome } from './replica.ts';

export interface UpstreamOptions {
  /** ws:// or wss:// address of the coordinator above. */
  readonly url: string;
  readonly token: string;
  /** PEM certificate(s) to trust for a wss:// coordinator. */
  readonly ca?: Buffer;
  /** What the socket's 'open' means to its owner (sends the hello). */
  readonly onOpen: () => void;
  /** A frame from above (`raw`: its bytes), handled in arrival order; what the connection should do next. */
  readonly onFrame: (frame: Frame, raw: Buffer) => Promise<ReplicaOutcome> | ReplicaOutcome;
  /** The run is over (`error`: a sentence when it cannot go on, e.g. a wrong token or an untrusted certificate). */
  readonly onEnd: (error?: string) => void;
  readonly log: (line: string) => void;
}

/** TLS verification failures: the coordinator is not who this process was told to trust. */
const TLS_REFUSALS = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * The connection a trainer (or a relay) keeps to the coordinator above: permessage-deflate off, the token as a
 * bearer header, reconnects with exponential backoff (0.5 s doubling to 15 s) until the run is finished, and stops
 * with one sentence where waiting cannot help (HTTP 401, an untrusted certificate, a fatal outcome). Returns the
 * function that sends one frame up; a frame sent while no socket is open is dropped (the next connection starts
 * with a hello and a fresh state).
 */
export function connectUpstream(o: UpstreamOptions): (frame: Uint8Array) => void {
  let ws: WebSocket;
  let ended = false;
  let attempt = 0;
  const end = (error?: string) => {
    if (ended) return;
    ended = true;
    o.onEnd(error);
  };
  const connect = () => {
    const socket = new WebSocket(o.url, {
      headers: { authorization: `Bearer ${o.token}` },
      perMessageDeflate: false,
      maxPayload: 1 << 30,
      ca: o.ca,
    });
    ws = socket;
    // Frames are handled one at a time: the owner's work on one may be asynchronous (a gradient).
    let queue: Promise<unknown> = Promise.resolve();
    socket.on('unexpected-response', (_req, res) => {
      end(
        `the coordinator refused the connection (HTTP ${res.statusCode}${res.statusCode === 401 ? ': wrong or missing token' : ''}).`,
      );
      socket.terminate();
    });
    socket.on('open', () => {
      attempt = 0;
      o.log(`connected to ${o.url}`);
      o.onOpen();
    });
    socket.on('message', (raw: Buffer) => {
      queue = queue.then(async () => {
        if (ended || socket !== ws) return;
        let frame: Frame;
        try {
          frame = decodeFrame(raw, { maxPayload: 1 << 28 });
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
          o.log(`bad frame from the coordinator: ${err.message}`);
          return socket.close(1008, 'bad frame');
        }
        let outcome: ReplicaOutcome;
        try {
          outcome = await o.onFrame(frame, raw);
        } catch (err) {
          // The coordinator's run cannot be served here (unknown settings, missing data, another network).
          end((err as Error).message);
          return socket.close(1000, 'cannot take part');
        }
        switch (outcome.kind) {
          case 'finished':
            o.log('coordinator: the run is finished');
            end();
            return socket.close(1000, 'done');
          case 'fatal':
            // Reconnecting cannot help: the versions will not change by waiting.
            end(outcome.message);
            return socket.close(1000, 'protocol version');
          case 'resync':
            o.log(outcome.message);
            return socket.close(1000, 'out of step');
        }
      });
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code && TLS_REFUSALS.has(err.code))
        // Retrying cannot help: the certificate will not become trusted by waiting.
        return end(
          `the coordinator's TLS certificate is not trusted (${err.message}); pass --ca with the certificate the coordinator serves or the CA that signed it.`,
        );
      o.log(`connection error: ${err.message}`);
    });
    socket.on('close', () => {
      if (ended) return;
      const delay = Math.min(15_000, 500 * 2 ** attempt++);
      o.log(`disconnected; reconnecting in ${(delay / 1000).toFixed(1)} s`);
      setTimeout(connect, delay);
    });
  };
  connect();
  return (frame) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(frame);
  };
}
