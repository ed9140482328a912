// The only way into a VM start: reconcile first, refuse while anything blocks (the VM runs or
// may run somewhere, or a start is in flight), then put the start in the record, to be persisted
// BEFORE VM.create is sent. A restarted controller then finds the start and waits for the
// agent's word, so a VM is never started twice.

import type { DecisionSettings } from '../decision-settings.js';
import { decisionEvent, type DecisionEvent } from '../decision-event.js';
import { reconcileVm } from './reconcile-vm.js';
import type { HostReport, VmRecord } from './vm-record.js';

/** The VM's state forbids the start (the REST API answers 409 with the blockers). */
export class VmStateError extends Error {
  override readonly name = 'VmStateError';
  readonly code = 1204;
  constructor(readonly vmId: string, readonly blockers: string[], options?: { cause?: unknown }) {
    super(`VM ${vmId} cannot be started: ${blockers.join('; ')}`, options);
  }
}

export function beginStart(prev: VmRecord, hosts: readonly HostReport[], hostId: string, now: number, s: DecisionSettings,
  jobId?: string): { record: VmRecord; events: DecisionEvent[] } {
  const r = reconcileVm(prev, hosts, now, s);
  if (r.blockers.length > 0) throw new VmStateError(prev.vmId, r.blockers);
  const record: VmRecord = {
    ...r.record, desired: 'running', hostId, status: 'WaitForLaunch', noted: null,
    startInFlight: { hostId, since: now, accepted: false, ...(jobId !== undefined ? { jobId } : {}) },
  };
  return { record, events: [...r.events, decisionEvent(now, 'vm.start', 'info', `start on ${hostId}`, { vm: prev.vmId, host: hostId, ...(jobId !== undefined ? { data: { jobId } } : {}) })] };
}

/**
 * What VM.create answered. `refused`: the agent answered an error and created nothing.
 * `unknown`: no answer (timeout, lost connection) or "already exists" (4): the VM may be
 * there, so the start stays in flight until the agent's VM list or the timeout settles it.
 */
export type StartOutcome =
  | { hostId: string; result: 'created' }
  | { hostId: string; result: 'refused'; error: string }
  | { hostId: string; result: 'unknown'; error: string };

export function recordStartOutcome(prev: VmRecord, o: StartOutcome, now: number): { record: VmRecord; events: DecisionEvent[] } {
  const f = prev.startInFlight;
  if (f === null || f.hostId !== o.hostId) {
    return { record: prev, events: [decisionEvent(now, 'vm.start-late', 'warning', `a late VM.create result from ${o.hostId} (${o.result}) for a start no longer in flight: ignored`, { vm: prev.vmId, host: o.hostId })] };
  }
  switch (o.result) {
    case 'created':
      return { record: { ...prev, startInFlight: { ...f, accepted: true } }, events: [] };
    case 'unknown':
      return { record: prev, events: [decisionEvent(now, 'vm.start-unsure', 'warning', `VM.create on ${o.hostId} gave no answer (${o.error}): waiting for the agent's VM list`, { vm: prev.vmId, host: o.hostId })] };
    case 'refused':
      return {
        record: { ...prev, startInFlight: null, hostId: null, status: 'Down' },
        events: [decisionEvent(now, 'vm.start-failed', 'warning', `${o.hostId} refused the start: ${o.error}`, { vm: prev.vmId, host: o.hostId })],
      };
  }
}
