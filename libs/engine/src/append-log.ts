import { appendFileSync, chmodSync, existsSync } from 'node:fs';

/**
 * An append-only log file that survives failing writes (EMFILE, ENOSPC, ...): lines that could not be
 * written are kept (up to `maxPending`) and written with the next line that succeeds; each failure
 * kind is reported once through `report` until a write works again. The file is owner-only (0600).
 */
export class AppendLog {
  private pending: string[] = [];
  private failing: string | null = null;
  lost = 0;

  constructor(
    readonly file: string,
    private readonly report: (line: string) => void,
    private readonly maxPending = 10_000,
  ) {
    if (existsSync(file)) chmodSync(file, 0o600);
  }

  append(line: string): void {
    this.pending.push(line);
    try {
      appendFileSync(this.file, this.pending.join(''), { mode: 0o600 });
      if (this.failing)
        this.report(
          `${this.file}: writing works again (${this.pending.length} held line(s) written, ${this.lost} lost)`,
        );
      this.pending = [];
      this.failing = null;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      if (this.pending.length > this.maxPending)
        this.lost += this.pending.splice(0, this.pending.length - this.maxPending).length;
      if (this.failing !== code) this.report(`${this.file}: cannot append (${code}); holding lines until it can`);
      this.failing = code;
    }
  }
}
