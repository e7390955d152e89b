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
  constructor(private readonly rate: number, private readonly burst: number) {
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
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
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

export type Refusal = 'total' | 'pending' | 'address';

/** Counts sockets by state; `admit` says why a new one must be closed at once, or null. */
export class ConnectionGate {
  private open = 0;
  private pendingCount = 0;
  private readonly pendingBy = new Map<string, number>();
  constructor(readonly limits: ConnectionLimits) {}

  admit(address: string): Refusal | null {
    if (this.open >= this.limits.total) return 'total';
    if (this.pendingCount >= this.limits.pending) return 'pending';
    if ((this.pendingBy.get(address) ?? 0) >= this.limits.pendingPerAddress) return 'address';
    this.open++;
    this.pendingCount++;
    this.pendingBy.set(address, (this.pendingBy.get(address) ?? 0) + 1);
    return null;
  }

  /** The socket presented the right token: it no longer counts as pending. */
  authenticated(address: string): void {
    this.unpend(address);
  }

  closed(address: string, wasAuthenticated: boolean): void {
    this.open--;
    if (!wasAuthenticated) this.unpend(address);
  }

  private unpend(address: string): void {
    this.pendingCount--;
    const n = (this.pendingBy.get(address) ?? 1) - 1;
    if (n > 0) this.pendingBy.set(address, n);
    else this.pendingBy.delete(address);
  }

  get counts(): { open: number; pending: number } {
    return { open: this.open, pending: this.pendingCount };
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

  constructor(private readonly log: (line: string) => void, private readonly windowMs = 10_000) {}

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
