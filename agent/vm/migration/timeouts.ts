// KubeVirt's two migration deadlines, as pure decisions over job-stats samples:
// progressTimeout (no new low of the data remaining for that long) and
// completionTimeoutPerGiB × guest memory (the whole copy). Neither applies in
// post-copy: that cannot be aborted.

export interface TimeoutLimits {
  /** ms; 0 off. */
  progressTimeoutMs: number;
  /** ms for the whole copy; 0 off. */
  completionTimeoutMs: number;
}

export interface TimeoutState {
  /** When the copy started (ms, any monotonic clock). */
  readonly startedMs: number;
  /** The lowest data remaining seen, and when it was first that low. */
  readonly lowest: number | undefined;
  readonly lowestAtMs: number;
}

export type TimeoutStep = 'progressTimeout' | 'completionTimeout';

export function startTimeouts(nowMs: number): TimeoutState {
  return { startedMs: nowMs, lowest: undefined, lowestAtMs: nowMs };
}

/**
 * Folds one sample in. A new low of the data remaining is progress (KubeVirt's
 * rule: remaining that grows back in a new iteration is not); a sample
 * without the figure leaves the clock running.
 */
export function checkTimeouts(l: TimeoutLimits, s: TimeoutState, nowMs: number, dataRemaining: number | undefined): { state: TimeoutState; due?: TimeoutStep; message?: string } {
  let state = s;
  if (dataRemaining !== undefined && Number.isFinite(dataRemaining) && (s.lowest === undefined || dataRemaining < s.lowest)) {
    state = { ...s, lowest: dataRemaining, lowestAtMs: nowMs };
  }
  const elapsed = nowMs - state.startedMs;
  if (l.completionTimeoutMs > 0 && elapsed > l.completionTimeoutMs) {
    return { state, due: 'completionTimeout', message: `the migration ran ${sec(elapsed)} s, past its completion timeout of ${sec(l.completionTimeoutMs)} s` };
  }
  const stalled = nowMs - state.lowestAtMs;
  if (l.progressTimeoutMs > 0 && stalled > l.progressTimeoutMs) {
    return { state, due: 'progressTimeout', message: `no progress for ${sec(stalled)} s (data remaining never went below ${state.lowest ?? '?'} bytes), past the progress timeout of ${sec(l.progressTimeoutMs)} s` };
  }
  return { state };
}

/** completionTimeoutPerGiB × guest memory, memory rounded up to whole GiB (at least 1). */
export function completionTimeoutMs(perGiBSec: number, memoryBytes: number): number {
  if (!(perGiBSec > 0)) return 0;
  const gib = Math.max(1, Math.ceil(memoryBytes / 2 ** 30));
  return perGiBSec * gib * 1000;
}

const sec = (ms: number): string => (ms / 1000).toFixed(1);
