/** A one-line progress bar on a terminal; on a pipe, a plain line every 10% of an epoch. */
export class Progress {
  private lastLine = 0;
  private readonly tty = Boolean(process.stderr.isTTY);
  private readonly started = performance.now();

  constructor(
    private readonly total: number,
    private readonly perEpoch: number,
  ) {}

  update(done: number, text: string): void {
    const now = performance.now();
    const every = Math.max(1, Math.floor(this.perEpoch / 10));
    if (this.tty) {
      if (now - this.lastLine < 100 && done < this.total) return;
      this.lastLine = now;
      const width = 30;
      const filled = Math.round((done / this.total) * width);
      const eta = (((now - this.started) / done) * (this.total - done)) / 1000;
      process.stderr.write(
        `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.total} ${text} eta ${eta.toFixed(0)}s\x1b[K`,
      );
    } else if (done % every === 0 || done === this.total) {
      console.log(`step ${done}/${this.total} ${text}`);
    }
  }

  clear(): void {
    if (this.tty) process.stderr.write('\r\x1b[K');
  }
}
