import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * The coordinator's defences against peers, without sockets: the token check, connection limits, a
 * rate limit for control messages, and a log of refusals that aggregates floods into one line per
 * window. serve.ts wires them to the HTTP server and WebSockets.
 */

/** Compares the presented token with the expected one in constant time (over their SHA-256). */
export function tokenMatches(expected: string, header: string | undefined): boolean {
  const presented = header?.startsWith('Bearer ') ? header.slice(7) : '';
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(expected), h(presented)) && presented.length > 0;
}

/** A token bucket: `rate` control messages per second, bursts up to `burst`. */
export class RateLimit {
  private tokens: number;
  private last = Date.now();
  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }
  take(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}

/** This process's soft limit on open files (Node raises it to the hard limit at start), or null if unknown. */
export function openFileLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(soft) ? soft : null;
  } catch {
    return null;
  }
}

export interface ConnectionLimits {
  /** Sockets open at once, authenticated or not. */
  readonly total: number;
  /** Sockets that have not yet presented the token (HTTP requests, upgrades in progress, idle TCP). */
  readonly pending: number;
  /** Of those, from one address. */
  readonly pendingPerAddress: number;
}

/** Files the coordinator may open beside its sockets (logs, metrics, checkpoints, data). */
const RESERVED_FILES = 64;

/** Limits from the wanted total, kept below the open-file limit so file writes always find a descriptor. */
export function connectionLimits(wanted: number, fileLimit = openFileLimit()): ConnectionLimits {
  const total = Math.max(8, Math.min(wanted, fileLimit === null ? wanted : fileLimit - RESERVED_FILES));
  const pending = Math.max(4, Math.min(256, total >> 1));
  return { total, pending, pendingPerAddress: Math.max(2, Math.min(32, pending >> 2)) };
}

/**
 * Counts sockets by state (keyed by "address:port"). A new socket that would pass a limit makes room
 * by evicting the oldest unauthenticated sockets (of its address first): an idle flood cannot lock
 * out a trainer that connects after it, because a real client presents the token within milliseconds
 * while the flood's sockets sit idle. Only when authenticated sockets fill the total is a socket refused.
 */
export class ConnectionGate {
  /** Unauthenticated sockets, oldest first: key -> address. */
  private readonly pending = new Map<string, string>();
  private readonly pendingBy = new Map<string, number>();
  private readonly authed = new Set<string>();
  constructor(readonly limits: ConnectionLimits) {}

  /** Admits a new socket; returns the keys of sockets to close to make room, or null when it must be refused. */
  admit(key: string, address: string): string[] | null {
    const evict: string[] = [];
    const drop = (victim: string) => {
      this.unpend(victim);
      evict.push(victim);
    };
    if ((this.pendingBy.get(address) ?? 0) >= this.limits.pendingPerAddress) {
      for (const [k, a] of this.pending)
        if (a === address) {
          drop(k);
          break;
        }
    }
    while (this.pending.size > 0 && (this.pending.size >= this.limits.pending || this.open >= this.limits.total))
      drop(this.pending.keys().next().value!);
    if (this.open >= this.limits.total) return null;
    this.pending.set(key, address);
    this.pendingBy.set(address, (this.pendingBy.get(address) ?? 0) + 1);
    return evict;
  }

  /** The socket presented the right token: it no longer counts as pending and is never evicted. */
  authenticated(key: string): void {
    if (!this.pending.has(key)) return;
    this.unpend(key);
    this.authed.add(key);
  }

  /** The socket closed (a no-op for one already evicted). */
  closed(key: string): void {
    if (this.pending.has(key)) this.unpend(key);
    else this.authed.delete(key);
  }

  private unpend(key: string): void {
    const address = this.pending.get(key)!;
    this.pending.delete(key);
    const n = (this.pendingBy.get(address) ?? 1) - 1;
    if (n > 0) this.pendingBy.set(address, n);
    else this.pendingBy.delete(address);
  }

  private get open(): number {
    return this.pending.size + this.authed.size;
  }

  get counts(): { open: number; pending: number } {
    return { open: this.open, pending: this.pending.size };
  }
}

/**
 * Refused connections, one line per window instead of one per refusal: the first refusal of a quiet
 * period is logged at once, the rest are counted by reason and summed up when the window ends.
 */
export class RefusalLog {
  private readonly counts = new Map<string, { n: number; example: string }>();
  private timer: NodeJS.Timeout | null = null;
  total = 0;

  constructor(
    private readonly log: (line: string) => void,
    private readonly windowMs = 10_000,
  ) {}

  /** `reason` groups refusals (a short code); `detail` is the sentence shown for the first of its kind. */
  refused(reason: string, detail: string): void {
    this.total++;
    if (!this.timer) {
      this.log(`refused a connection: ${detail}`);
      this.timer = setTimeout(() => this.flush(), this.windowMs);
      this.timer.unref();
      return;
    }
    const c = this.counts.get(reason);
    if (c) c.n++;
    else this.counts.set(reason, { n: 1, example: detail });
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.counts.size === 0) return;
    const n = [...this.counts.values()].reduce((a, c) => a + c.n, 0);
    const parts = [...this.counts].map(([reason, c]) => `${c.n} ${reason} (e.g. ${c.example})`);
    this.counts.clear();
    this.log(`refused ${n} more connection(s) in the last ${this.windowMs / 1000} s: ${parts.join('; ')}`);
  }
}
