// Connectivity confirmation for setupNetworks' rollback. VDSM polls the mtime
// of a file the engine's confirmConnectivity touches; here the dispatcher
// calls touch() on Host.confirmConnectivity (and, as in VDSM, on any engine
// request), and a waiting transaction wakes at once.
export class ConnectivityWatch {
  private readonly waiters = new Set<() => void>();
  private lastMs = -Infinity;

  /** The engine reached us. */
  touch(): void {
    this.lastMs = performance.now();
    for (const w of [...this.waiters]) w();
  }

  /** Milliseconds since the last touch (Infinity if never). */
  sinceLastMs(): number {
    return performance.now() - this.lastMs;
  }

  /** True as soon as touch() is called after this call began; false after timeoutMs. */
  waitForConfirmation(timeoutMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(ok);
      };
      const waiter = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.waiters.add(waiter);
    });
  }
}
