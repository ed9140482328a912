// Runs async tasks with bounded concurrency, at most one at a time per key
// (the SPM runs one handler at a time per volume, at most `limit` overall).
// Tasks start in FIFO order, skipping those whose key is busy.
export class KeyedLimiter {
  private readonly queue: { key: string; task: () => Promise<void> }[] = [];
  private readonly active = new Set<Promise<void>>();
  private readonly busyKeys = new Set<string>();
  private closed = false;

  constructor(private readonly limit: number, private readonly onError: (err: unknown) => void) {
    if (!(limit >= 1)) throw new RangeError(`concurrency must be ≥ 1, got ${limit}`);
  }

  get running(): number {
    return this.active.size;
  }

  get queued(): number {
    return this.queue.length;
  }

  add(key: string, task: () => Promise<void>): void {
    if (this.closed) return;
    this.queue.push({ key, task });
    this.pump();
  }

  /** Drops the queued tasks and refuses new ones; running tasks go on. */
  close(): void {
    this.closed = true;
    this.queue.length = 0;
  }

  /** Settles when the tasks running now (and any they start) have finished. */
  async settled(): Promise<void> {
    for (let i = 0; this.active.size && i < 1000; i++) await Promise.allSettled([...this.active]);
  }

  private pump(): void {
    while (!this.closed && this.active.size < this.limit) {
      const i = this.queue.findIndex((q) => !this.busyKeys.has(q.key));
      if (i < 0) return;
      const { key, task } = this.queue.splice(i, 1)[0]!;
      this.busyKeys.add(key);
      const p: Promise<void> = task().catch(this.onError).finally(() => {
        this.active.delete(p);
        this.busyKeys.delete(key);
        this.pump();
      });
      this.active.add(p);
    }
  }
}
