// VDSM's convergence schedule (migration.py MonitorThread), as a pure stepper:
// init actions run once as the copy starts; then at each new memory iteration
// libvirt reports, the head of `stalling` runs if its limit is below the
// number of iterations since the start, and is dropped. At most one action per
// new iteration; none once the guest runs in post-copy.
import type { Static } from '@sinclair/typebox';
import type { ConvergenceAction, ConvergenceSchedule } from '../../../api/methods/migration.js';

export type ConvergenceScheduleT = Static<typeof ConvergenceSchedule>;
export type ConvergenceActionT = Static<typeof ConvergenceAction>;

export interface ScheduleState {
  /** The memory iteration first seen: iterations are counted from it, as VDSM does. */
  readonly initial: number | undefined;
  /** The highest memory iteration seen; an action runs only when this grows. */
  readonly last: number | undefined;
  /** Index of the next stalling entry. */
  readonly next: number;
  /** Once post-copy runs, the schedule is over. */
  readonly postcopy: boolean;
}

export const START: ScheduleState = { initial: undefined, last: undefined, next: 0, postcopy: false };

/**
 * Folds one observed memory iteration (from the MIGRATION_ITERATION event or
 * job stats, in any order, repeats allowed) into the state, and says which
 * stalling action is due now, if any.
 */
export function stepSchedule(schedule: ConvergenceScheduleT, s: ScheduleState, iteration: number): { state: ScheduleState; action?: ConvergenceActionT } {
  if (!Number.isFinite(iteration) || iteration < 0) return { state: s };
  if (s.initial === undefined || s.last === undefined) return { state: { ...s, initial: iteration, last: iteration } };
  if (iteration <= s.last) return { state: s };
  const state: ScheduleState = { ...s, last: iteration };
  if (s.postcopy) return { state };
  const head = schedule.stalling[s.next];
  if (!head || !(head.limit < iteration - s.initial)) return { state };
  return { state: { ...state, next: s.next + 1 }, action: head.action };
}

/** The state once post-copy started: no further actions. */
export function postcopyStarted(s: ScheduleState): ScheduleState {
  return { ...s, postcopy: true };
}

export function scheduleHas(schedule: ConvergenceScheduleT, name: ConvergenceActionT['name']): boolean {
  return schedule.stalling.some((e) => e.action.name === name);
}

/** VDSM's exponential_downtime: `steps` downtimes from about max/steps up to max, growing slowly first. */
export function exponentialDowntimes(maxMs: number, steps: number): number[] {
  if (steps <= 1) return [Math.round(maxMs)];
  const offset = maxMs / steps;
  const base = (maxMs - offset) ** (1 / (steps - 1));
  return Array.from({ length: steps }, (_, i) => Math.trunc(offset + base ** i));
}

/** VDSM's legacy schedule waits this many iterations at the last downtime before its final step. */
const LEGACY_LAST_STEP_ITERATION = 42;

/**
 * The schedule used when VM.migrate sends none: VDSM's legacy one (init at the
 * first downtime, one step up per iteration, the last held until iteration 42),
 * ending in abort, or in post-copy when post-copy is allowed (as oVirt's
 * "Post-copy migration" policy ends).
 */
export function defaultSchedule(maxDowntimeMs: number, steps: number, postcopy: boolean): ConvergenceScheduleT {
  const downtimes = exponentialDowntimes(maxDowntimeMs, Math.max(1, steps));
  const setDowntime = (ms: number): ConvergenceActionT => ({ name: 'setDowntime', params: [String(ms)] });
  const stalling: ConvergenceScheduleT['stalling'] = downtimes.slice(1).map((ms, i) => ({ limit: i + 1, action: setDowntime(ms) }));
  stalling.push({ limit: LEGACY_LAST_STEP_ITERATION, action: setDowntime(downtimes.at(-1)!) });
  stalling.push({ limit: -1, action: postcopy ? { name: 'postcopy' } : { name: 'abort' } });
  return { init: [{ name: 'setDowntime', params: [String(downtimes[0]!)] }], stalling };
}

/** Checks what the schema cannot: post-copy explicitly refused with a schedule that needs it. */
export function scheduleProblem(schedule: ConvergenceScheduleT | undefined, postcopy: boolean | undefined): string | undefined {
  if (schedule && postcopy === false && scheduleHas(schedule, 'postcopy')) return 'convergenceSchedule has a postcopy action but postcopy is false';
  return undefined;
}
