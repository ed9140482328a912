// A counting limit on concurrent migrations (VDSM's semaphores): the source
// waits for an outgoing slot within its timeout; the destination takes an
// incoming slot or refuses at once (migrateLimit).
export class Slots {
  private used = 0;
  private waiters: Array<() => void> = [];

  constructor(private readonly limit: () => number) {}

  get inUse(): number { return this.used; }

  /** Takes a slot if fewer than `limit` are in use. */
  tryAcquire(limit = this.limit()): boolean {
    if (this.used >= limit) return false;
    this.used++;
    return true;
  }

  /** Waits for a slot; false after timeoutMs or once `signal` aborts. */
  async acquire(timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (!this.tryAcquire()) {
      const left = until - Date.now();
      if (left <= 0 || signal?.aborted) return false;
      await new Promise<void>((resolve) => {
        const done = (): void => { clearTimeout(t); signal?.removeEventListener('abort', done); this.waiters = this.waiters.filter((w) => w !== done); resolve(); };
        const t = setTimeout(done, left);
        signal?.addEventListener('abort', done, { once: true });
        this.waiters.push(done);
      });
    }
    return true;
  }

  release(): void {
    this.used = Math.max(0, this.used - 1);
    this.waiters.shift()?.();
  }
}
