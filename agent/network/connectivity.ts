// Connectivity confirmation for setupNetworks' rollback. VDSM polls the mtime
// of a file the engine's confirmConnectivity touches; here the dispatcher
// calls touch() on Host.confirmConnectivity (and, as in VDSM, on any engine
// request), and a waiting transaction wakes at once.
//
// abort() is for a stopping agent: the change waiting for a confirmation is
// then rolled back at once instead of after connectivityTimeout (engines send
// 120 s, systemd kills a stopping agent after 60 s), so the rollback runs and
// the agent exits with the host as it was.
export class ConnectivityWatch {
  private readonly waiters = new Set<(confirmed: boolean) => void>();
  private readonly aborter = new AbortController();
  private lastMs = -Infinity;

  /** The engine reached us. */
  touch(): void {
    this.lastMs = performance.now();
    // Every engine request lands here: no copy of the waiters unless one waits.
    if (this.waiters.size > 0) for (const w of [...this.waiters]) w(true);
  }

  /**
   * Ends every wait, now and later, with "not confirmed" (sticky), and aborts
   * `signal` with REASON so a change still applying stops at its next step.
   */
  abort(reason: string): void {
    if (!this.aborter.signal.aborted) this.aborter.abort(new Error(reason));
    for (const w of [...this.waiters]) w(false);
  }

  /** Aborted by abort(); its reason is an Error whose message says why. */
  get signal(): AbortSignal {
    return this.aborter.signal;
  }

  /** Milliseconds since the last touch (Infinity if never). */
  sinceLastMs(): number {
    return performance.now() - this.lastMs;
  }

  /** True as soon as touch() is called after this call began; false after timeoutMs, or at once after abort(). */
  waitForConfirmation(timeoutMs: number): Promise<boolean> {
    if (this.aborter.signal.aborted) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const done = (confirmed: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve(confirmed);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.waiters.add(done);
    });
  }
}

/** Why SIGNAL was aborted (the message of its reason), or undefined if it was not. */
export function abortReason(signal: AbortSignal | undefined): string | undefined {
  if (!signal?.aborted) return undefined;
  const r: unknown = signal.reason;
  return r instanceof Error ? r.message : String(r);
}
