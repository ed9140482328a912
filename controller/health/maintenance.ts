// An admin's maintenance and activate requests on a host's health record. The maintenance job
// (controller/migration) drains the VMs; here only the states move: PreparingForMaintenance until
// the host runs no VM (nextHostHealth then moves it to Maintenance), MaintenanceFailed when a VM
// could not be moved off, and back through Initializing on activate or cancel.

import { decisionEvent, type DecisionEvent } from '../decision-event.js';
import type { HostHealth, UnfitReason } from './host-status.js';

/** The request does not fit the host's state (the REST API answers 409 with the message). */
export class HostStateError extends Error {
  override readonly name = 'HostStateError';
  readonly code = 1202;
  constructor(readonly hostId: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface AdminStep {
  host: HostHealth;
  events: DecisionEvent[];
}

export function requestMaintenance(prev: HostHealth, now: number, why: string): AdminStep {
  switch (prev.status) {
    case 'Maintenance':
    case 'PreparingForMaintenance':
      throw new HostStateError(prev.hostId, `host ${prev.hostId} is already ${prev.status}`);
    case 'MaintenanceFailed':
      throw new HostStateError(prev.hostId, `host ${prev.hostId} is MaintenanceFailed: cancel it (POST /hosts/{id}/maintenance/cancel) before asking again`);
    case 'Up':
    case 'NonOperational':
    case 'Initializing':
      return to(prev, 'PreparingForMaintenance', now, why);
    default:
      // Unreachable: its VMs may still run, so it cannot be said to be drained.
      if (prev.vmCount > 0) {
        throw new HostStateError(prev.hostId,
          `host ${prev.hostId} is ${prev.status} with ${prev.vmCount} VM(s) whose state is unknown; it cannot enter maintenance until it answers`);
      }
      return to(prev, 'Maintenance', now, why);
  }
}

export function activate(prev: HostHealth, now: number, why: string): AdminStep {
  if (prev.status !== 'Maintenance' && prev.status !== 'PreparingForMaintenance') {
    throw new HostStateError(prev.hostId, `host ${prev.hostId} is ${prev.status}, not in maintenance`);
  }
  // Initializing until the next good poll decides Up or NonOperational; failures count afresh.
  return to({ ...prev, failedPolls: 0, lastContactAt: null }, 'Initializing', now, why);
}

/** The drain gave up: the host keeps its VMs, with one reason per VM that could not be moved. */
export function maintenanceFailed(prev: HostHealth, now: number, reasons: UnfitReason[]): AdminStep {
  if (prev.status !== 'PreparingForMaintenance') {
    throw new HostStateError(prev.hostId, `host ${prev.hostId} is ${prev.status}, not PreparingForMaintenance`);
  }
  const step = to(prev, 'MaintenanceFailed', now, `maintenance failed: ${reasons.map((r) => r.message).join('; ')}`);
  return { host: { ...step.host, reasons }, events: step.events.map((e) => ({ ...e, severity: 'warning' as const, data: { ...e.data, reasons } })) };
}

/** An admin gives up on a maintenance under way or failed: the host goes back (through Initializing) to Up. */
export function cancelMaintenance(prev: HostHealth, now: number, why: string): AdminStep {
  if (prev.status !== 'PreparingForMaintenance' && prev.status !== 'MaintenanceFailed') {
    throw new HostStateError(prev.hostId, `host ${prev.hostId} is ${prev.status}: no maintenance to cancel`);
  }
  return to({ ...prev, failedPolls: 0 }, 'Initializing', now, why);
}

function to(prev: HostHealth, status: HostHealth['status'], now: number, why: string): AdminStep {
  return {
    host: { ...prev, status, statusSince: now, reasons: [] },
    events: [decisionEvent(now, 'host.status', 'info', why, { host: prev.hostId, data: { from: prev.status, to: status } })],
  };
}
