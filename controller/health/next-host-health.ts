// The host state machine: one poll's outcome moves a host's health record. Pure: the previous
// record, what the poll saw and the time in; the next record and the transition events out.
//
//   answered  -> Up, or NonOperational with reasons (Maintenance stays; PreparingForMaintenance
//                ends in Maintenance once the host runs no VM; MaintenanceFailed stays until cancelled)
//   recovering (the agent answered 99) -> Initializing; NonOperational after recoveryTimeoutMs
//   failed    -> Connecting while in grace, NonResponsive after it (its VMs become Unknown);
//                Installing stays Installing (never contacted), Maintenance ignores failures

import type { DecisionSettings } from '../decision-settings.js';
import { decisionEvent, type DecisionEvent } from '../decision-event.js';
import type { HostHealth, HostStatus, UnfitReason } from './host-status.js';
import { assessFitness, sameReasons, type FitnessObservation } from './fitness.js';
import { nonResponsiveGraceMs, stillInGrace } from './grace.js';

export type PollOutcome =
  | { kind: 'answered'; vmCount: number; fitness: FitnessObservation }
  /** Host.getStats (or any call) refused with 99: the agent is up but recovering its VMs */
  | { kind: 'recovering' }
  /** no answer: connection refused or lost, TLS failure, timeout */
  | { kind: 'failed'; error: string };

export interface HealthContext {
  /** the host is the SPM the controller knows of: a longer grace */
  isSpm: boolean;
}

export interface HealthStep {
  host: HostHealth;
  events: DecisionEvent[];
  /** the host just turned NonResponsive: every VM on it is now Unknown (never Down) */
  vmsTurnedUnknown: boolean;
}

export function nextHostHealth(prev: HostHealth, poll: PollOutcome, ctx: HealthContext, now: number, s: DecisionSettings): HealthStep {
  switch (poll.kind) {
    case 'answered': return afterAnswer(prev, poll, now, s);
    case 'recovering': return afterRecovering(prev, now, s);
    case 'failed': return afterFailure(prev, poll.error, ctx, now, s);
  }
}

function afterAnswer(prev: HostHealth, poll: { vmCount: number; fitness: FitnessObservation }, now: number, s: DecisionSettings): HealthStep {
  const fit = assessFitness(poll.fitness, prev.storageUnreachableSince, now, s);
  const contacted: HostHealth = {
    ...prev, failedPolls: 0, lastContactAt: now, lastError: null, vmCount: poll.vmCount,
    storageUnreachableSince: fit.storageUnreachableSince,
  };
  if (prev.status === 'Maintenance' || prev.status === 'MaintenanceFailed') return stay(contacted);
  if (prev.status === 'PreparingForMaintenance') {
    return poll.vmCount === 0
      ? move(contacted, 'Maintenance', [], now, 'no VM runs on the host any more: maintenance reached')
      : stay(contacted);
  }
  if (fit.reasons.length > 0) return unfit(contacted, fit.reasons, now);
  if (prev.status === 'Up') return stay(contacted);
  const why = prev.status === 'Installing' ? 'first contact with the enrolled agent'
    : prev.status === 'Initializing' ? 'the agent finished recovering'
    : prev.status === 'NonOperational' ? 'the host is fit again: ' + prev.reasons.map((r) => r.message).join('; ') + ' no longer holds'
    : `the agent answers again after ${prev.failedPolls} failed poll(s)`;
  return move(contacted, 'Up', [], now, why);
}

function unfit(host: HostHealth, reasons: UnfitReason[], now: number): HealthStep {
  const text = reasons.map((r) => r.message).join('; ');
  if (host.status !== 'NonOperational') return move(host, 'NonOperational', reasons, now, text);
  if (sameReasons(host.reasons, reasons)) return stay({ ...host, reasons });
  return {
    host: { ...host, reasons },
    events: [decisionEvent(now, 'host.unfit', 'warning', `reasons changed: ${text}`, { host: host.hostId, data: { reasons } })],
    vmsTurnedUnknown: false,
  };
}

function afterRecovering(prev: HostHealth, now: number, s: DecisionSettings): HealthStep {
  const contacted: HostHealth = { ...prev, failedPolls: 0, lastContactAt: now, lastError: null };
  switch (prev.status) {
    case 'Maintenance':
    case 'PreparingForMaintenance':
    case 'MaintenanceFailed':
    case 'NonOperational':
      return stay(contacted);
    case 'Initializing':
      if (now - prev.statusSince <= s.recoveryTimeoutMs) return stay(contacted);
      return move(contacted, 'NonOperational', [{
        code: 'recoveryTimeout',
        message: `the agent has been recovering (99) for ${Math.round((now - prev.statusSince) / 1000)} s, longer than ${s.recoveryTimeoutMs / 1000} s`,
      }], now, 'recovery did not end in time');
    default:
      return move(contacted, 'Initializing', [], now, 'the agent is recovering after a restart (99)');
  }
}

function afterFailure(prev: HostHealth, error: string, ctx: HealthContext, now: number, s: DecisionSettings): HealthStep {
  const failed: HostHealth = { ...prev, failedPolls: prev.failedPolls + 1, lastError: error };
  if (prev.status === 'Maintenance' || prev.status === 'Installing' || prev.status === 'NonResponsive') return stay(failed);
  const lastAnswer = prev.lastContactAt ?? prev.statusSince;
  const graceMs = nonResponsiveGraceMs(s, { isSpm: ctx.isSpm, vmCount: prev.vmCount });
  if (stillInGrace(s, failed.failedPolls, lastAnswer, graceMs, now)) {
    // PreparingForMaintenance keeps its state through the grace, as in oVirt: it is still draining.
    if (prev.status === 'Connecting' || prev.status === 'PreparingForMaintenance' || prev.status === 'MaintenanceFailed') return stay(failed);
    return move(failed, 'Connecting', [], now,
      `poll failed (${error}); NonResponsive after more than ${s.nonResponsiveAttempts} failed polls and ${graceMs / 1000} s without an answer`,
      { graceMs });
  }
  const step = move(failed, 'NonResponsive', [], now,
    `no answer for ${Math.round((now - lastAnswer) / 1000)} s and ${failed.failedPolls} polls (grace ${graceMs / 1000} s${ctx.isSpm ? ', SPM' : ''}, ${prev.vmCount} VM(s)); last error: ${error}`,
    { graceMs, failedPolls: failed.failedPolls });
  step.vmsTurnedUnknown = true;
  if (prev.vmCount > 0) {
    step.events.push(decisionEvent(now, 'host.vms-unknown', 'warning',
      `the ${prev.vmCount} VM(s) of the host are Unknown until it answers again (not Down: they may still run)`,
      { host: prev.hostId, data: { vmCount: prev.vmCount } }));
  }
  return step;
}

function stay(host: HostHealth): HealthStep {
  return { host, events: [], vmsTurnedUnknown: false };
}

function move(host: HostHealth, to: HostStatus, reasons: UnfitReason[], now: number, reason: string, data: Record<string, unknown> = {}): HealthStep {
  const severity = to === 'Up' || to === 'Maintenance' || to === 'Initializing' ? 'info'
    : to === 'NonResponsive' ? 'error' : 'warning';
  const event = decisionEvent(now, 'host.status', severity, reason, {
    host: host.hostId, data: { from: host.status, to, ...(reasons.length > 0 ? { reasons } : {}), ...data },
  });
  return { host: { ...host, status: to, statusSince: now, reasons }, events: [event], vmsTurnedUnknown: false };
}
