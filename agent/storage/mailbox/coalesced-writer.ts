// Coalesces writes of one block whose content lives in memory: callers change
// the in-memory state and call request(); one write runs at a time, and every
// request() resolves once a write that *started after* it has completed (so it
// includes the caller's change). Many changes during one write cost one more
// write, not one each. A failed write rejects everyone waiting; `dirty` stays
// true so the owner can retry with request().
export class CoalescedWriter {
  private version = 0;
  private written = 0;
  private running = false;
  private waiters: { v: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private loopDone: Promise<void> = Promise.resolve();

  /** `writeOnce` builds the block from the current in-memory state and writes it. */
  constructor(private readonly writeOnce: () => Promise<void>) {}

  /** Changes not yet on disk. */
  get dirty(): boolean {
    return this.written < this.version;
  }

  get busy(): boolean {
    return this.running;
  }

  request(): Promise<void> {
    const v = ++this.version;
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ v, resolve, reject }));
    if (!this.running) {
      this.running = true;
      this.loopDone = this.loop();
    }
    return p;
  }

  /** Resolves when no write is running. */
  idle(): Promise<void> {
    return this.loopDone;
  }

  private async loop(): Promise<void> {
    while (this.written < this.version) {
      const v = this.version;
      try {
        await this.writeOnce();
      } catch (err) {
        const all = this.waiters;
        this.waiters = [];
        for (const w of all) w.reject(err);
        break;
      }
      this.written = Math.max(this.written, v);
      const done = this.waiters.filter((w) => w.v <= v);
      this.waiters = this.waiters.filter((w) => w.v > v);
      for (const w of done) w.resolve();
    }
    // Set in the same synchronous step as the last check, so a request() that
    // comes after it starts a new loop.
    this.running = false;
  }
}
