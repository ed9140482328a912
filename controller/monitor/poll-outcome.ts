// One Host.getStats poll's outcome as nextHostHealth takes it. The agent answers Host.getStats
// normally while it recovers (only mutating calls answer 99), so its `recovering` field says
// whether it has reconciled its VMs with libvirt yet; a 99 answer counts the same. An older
// agent without the field is read as not recovering: its VM list then carries Unknown entries,
// which reconcile keeps as Unknown, so nothing is decided on a VM it cannot see yet.
import type { ResultOf } from '../../api/schema.js';
import { ERRORS } from '../../api/errors.js';
import { FIT, type FitnessObservation } from '../health/fitness.js';
import type { PollOutcome } from '../health/next-host-health.js';

export type HostStats = ResultOf<'Host.getStats'>;

/** The poll answered with these stats. VMs counted for the grace: those the agent runs (not Down). */
export function answeredPoll(stats: HostStats, fitness: FitnessObservation = FIT): PollOutcome {
  if (stats.recovering === true) return { kind: 'recovering' };
  return { kind: 'answered', vmCount: stats.vmActive, fitness };
}

/** The poll failed with this error: recovering when the agent said 99, else a failed poll naming why. */
export function failedPoll(e: unknown): PollOutcome {
  const code = (e as { code?: unknown } | null)?.code;
  if (code === ERRORS.recovery.code) return { kind: 'recovering' };
  return { kind: 'failed', error: describePollError(e) };
}

/** A short reason for the host's record and the API: the error's message, its code, and its cause. */
export function describePollError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = (e as { code?: unknown }).code;
  const cause = e.cause instanceof Error && !e.message.includes(e.cause.message) ? `: ${e.cause.message}` : '';
  return `${e.message}${cause}${typeof code === 'number' ? ` (${code})` : ''}`;
}
