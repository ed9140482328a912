// Runs storage probes (a read, an activation, a vgs) so that a hung one can
// never hold up its caller or pile up behind itself:
//  - the caller gets an answer within the timeout (plus a small grace), even
//    if the probe itself never returns (a process stuck in uninterruptible
//    I/O survives SIGKILL until the I/O ends);
//  - while a probe of one kind is still running past its timeout, the next
//    call of that kind starts nothing and answers 'blocked' at once.
// The probes themselves run in child processes or off the JS thread; this
// only decides how long to wait for them.

export type ProbeOutcome<T> =
  | { kind: 'ok'; value: T; ms: number }
  | { kind: 'failed'; error: unknown; ms: number }
  /** No answer within the timeout; the probe may still be running. */
  | { kind: 'timeout'; ms: number }
  /** The previous probe of this kind has not returned yet (for `ms`); nothing new was started. */
  | { kind: 'blocked'; ms: number };

/** How long past its timeout a probe that enforces the timeout itself (by killing its child) is given to report. */
export const PROBE_GRACE_MS = 1_000;

export class BoundedProbes {
  private readonly running = new Map<string, { since: number; settled: Promise<unknown> }>();

  /** Is a probe of this kind still running (for how long, ms)? */
  stuckFor(kind: string): number | undefined {
    const r = this.running.get(kind);
    return r ? performance.now() - r.since : undefined;
  }

  /** Resolves when every probe still running has returned, or after maxMs. */
  async drain(maxMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const all = Promise.all([...this.running.values()].map((r) => r.settled));
    await Promise.race([all, new Promise((r) => { timer = setTimeout(r, maxMs); })]);
    clearTimeout(timer);
  }

  /**
   * Runs fn unless a probe of `kind` is still running. Answers when fn does,
   * or after timeoutMs + grace with 'timeout' (fn keeps its slot until it returns).
   */
  async run<T>(kind: string, timeoutMs: number, fn: () => Promise<T>, graceMs = PROBE_GRACE_MS): Promise<ProbeOutcome<T>> {
    const prev = this.running.get(kind);
    if (prev) return { kind: 'blocked', ms: performance.now() - prev.since };
    const since = performance.now();
    const done: Promise<ProbeOutcome<T>> = fn().then(
      (value) => ({ kind: 'ok', value, ms: performance.now() - since }),
      (error: unknown) => ({ kind: 'failed', error, ms: performance.now() - since }),
    );
    const slot = { since, settled: done };
    this.running.set(kind, slot);
    void done.then(() => { if (this.running.get(kind) === slot) this.running.delete(kind); });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<ProbeOutcome<T>>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'timeout', ms: performance.now() - since }), timeoutMs + graceMs);
    });
    try {
      return await Promise.race([done, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}
