// Capped, jittered exponential backoff for reconnecting, and the timers it
// runs on (injectable, so tests drive time and randomness themselves).

export interface BackoffOptions {
  /** The first retry's delay before jitter, ms (default 200). */
  initialMs?: number;
  /** No delay is ever longer than this, ms (default 30 s). */
  maxMs?: number;
  /** Growth per failed attempt (default 2). */
  factor?: number;
  /**
   * Share of the delay that is random, 0..1 (default 0.5): the delay is
   * drawn from [base * (1 - jitter), base], so agents restarted together
   * are not reconnected to in lockstep by many controllers.
   */
  jitter?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { initialMs: 200, maxMs: 30_000, factor: 2, jitter: 0.5 };

/** Checks the options once, so a bad value fails where it is given, not at the first reconnect. */
export function backoffSettings(o: BackoffOptions = {}): Required<BackoffOptions> {
  const s = { ...DEFAULT_BACKOFF, ...o };
  if (!(s.initialMs > 0)) throw new RangeError(`backoff.initialMs must be > 0, got ${s.initialMs}`);
  if (!(s.maxMs >= s.initialMs)) throw new RangeError(`backoff.maxMs must be >= initialMs (${s.initialMs}), got ${s.maxMs}`);
  if (!(s.factor >= 1)) throw new RangeError(`backoff.factor must be >= 1, got ${s.factor}`);
  if (!(s.jitter >= 0 && s.jitter <= 1)) throw new RangeError(`backoff.jitter must be within 0..1, got ${s.jitter}`);
  return s;
}

/**
 * The delay before retry number `retry` (0 for the first): initialMs *
 * factor^retry, capped at maxMs, less a random share of up to `jitter`.
 * `random` returns a number in [0, 1), like Math.random.
 */
export function backoffDelay(retry: number, s: Required<BackoffOptions>, random: () => number): number {
  const base = Math.min(s.maxMs, s.initialMs * s.factor ** Math.max(0, retry));
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(base * (1 - s.jitter * r));
}

/** The timers a reconnecting client uses; the default is Node's. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const NODE_TIMERS: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};
