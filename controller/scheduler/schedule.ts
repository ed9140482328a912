// VM placement: filters, then weights. A pure function of the hosts, what is booked on them
// (running VMs and pending starts), the cluster policy and the settings. The caller adds the
// returned host as a pending reservation in the same synchronous step (reserve), so that the
// next start already sees it: concurrent starts cannot overbook a host.

import type { DecisionSettings } from '../decision-settings.js';
import { bookedOn, usableMemoryMiB } from './booked.js';
import { firstExclusion } from './filters.js';
import { byScore, scoreHost } from './weights.js';
import type { Booking, ClusterPolicy, Exclusion, HostScore, PendingReservation, Placement, SchedHost, SchedVm } from './sched-types.js';

export interface ScheduleInput {
  vm: SchedVm;
  hosts: readonly SchedHost[];
  running: readonly Booking[];
  pending: readonly Booking[];
  policy: ClusterPolicy;
  /** a host the start request names: only it may be chosen */
  requestedHostId?: string | null;
}

export function schedule(input: ScheduleInput, s: DecisionSettings): Placement {
  const { vm, policy } = input;
  const excluded: Exclusion[] = [];
  const scores: HostScore[] = [];
  for (const host of input.hosts) {
    const booked = bookedOn(host.hostId, input.running, input.pending, vm.vmId);
    const usable = usableMemoryMiB(host.memTotalMiB, s.hostReservedMemoryMiB);
    const out = firstExclusion({
      host, vm, booked, usableMemoryMiB: usable, hostReservedMemoryMiB: s.hostReservedMemoryMiB, requestedHostId: input.requestedHostId ?? null,
    });
    if (out !== null) excluded.push({ hostId: host.hostId, ...out });
    else scores.push(scoreHost(policy, host, vm, booked, usable));
  }
  scores.sort(byScore);
  return { vmId: vm.vmId, policy: policy.name, hostId: scores[0]?.hostId ?? null, scores, excluded };
}

/** No host can take the VM: the REST API answers 422 with `details.hosts`, the filter that excluded each. */
export class NoSuitableHostError extends Error {
  override readonly name = 'NoSuitableHostError';
  readonly code = 1203;
  readonly details: { vmId: string; hosts: Exclusion[] };
  constructor(placement: Placement, options?: { cause?: unknown }) {
    const per = placement.excluded.map((e) => `${e.hostId}: ${e.filter} (${e.reason})`).join('; ');
    super(`no host can run VM ${placement.vmId}${per === '' ? ': the cluster has no host' : `: ${per}`}`, options);
    this.details = { vmId: placement.vmId, hosts: placement.excluded };
  }
}

/** The placement's host, or NoSuitableHostError. */
export function chosenHost(placement: Placement): string {
  if (placement.hostId === null) throw new NoSuitableHostError(placement);
  return placement.hostId;
}

/** The pending list with this VM's start booked on the chosen host (replacing any older booking of it). */
export function reserve(pending: readonly PendingReservation[], vm: SchedVm, hostId: string, now: number): PendingReservation[] {
  return [...release(pending, vm.vmId), { vmId: vm.vmId, hostId, memoryMiB: vm.memoryMiB, vcpus: vm.vcpus, since: now }];
}

/** The pending list without this VM's booking: its start failed, or the agent now reports it running. */
export function release(pending: readonly PendingReservation[], vmId: string): PendingReservation[] {
  return pending.filter((p) => p.vmId !== vmId);
}

/** A cluster's policy when it sets none: evenly_distributed, the setting's HighUtilization. */
export function defaultPolicy(s: DecisionSettings): ClusterPolicy {
  return { name: 'evenly_distributed', highUtilizationPct: s.highUtilizationPct };
}
