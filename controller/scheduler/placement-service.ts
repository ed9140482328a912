// Placement at request time, around the pure schedule(): the hosts as the runtime sees them at
// this moment, the VMs booked on them (running, or maybe running) and the pending starts go in;
// the chosen host is reserved in the same synchronous step, so that concurrent starts cannot
// overbook a host. Every decision is logged with its scores and exclusions.
import type { DecisionSettings } from '../decision-settings.js';
import { decisionEvent, type DecisionEvent } from '../decision-event.js';
import type { LogFn } from '../agents/log-fn.js';
import type { Cluster } from '../model/clusters.js';
import type { Host } from '../model/hosts.js';
import type { Vm } from '../model/vms.js';
import { NoSuitableHostError, schedule } from './schedule.js';
import type { PendingReservations, PersistedPlacement } from './reservations.js';
import type { Booking, ClusterPolicy, Placement, SchedHost, SchedVm } from './sched-types.js';

/** What placement reads of the runtime; synchronous, so one decision sees one moment. */
export interface PlacementView {
  /** the given hosts (one cluster's) as the runtime sees them now */
  schedHosts(hosts: readonly Host[]): SchedHost[];
  /** VMs booked where they run or may run (Unknown included), by their reservations */
  running(): Booking[];
}

export interface PlacementRequest {
  vm: SchedVm;
  /** the hosts of the VM's cluster, from the store */
  hosts: readonly Host[];
  policy: ClusterPolicy;
  /** POST /vms/{id}/start {host}: validated by the same filters */
  requestedHostId: string | null;
  correlationId?: string;
}

export interface PlacementDecision {
  placement: Placement;
  reservation: PersistedPlacement;
  event: DecisionEvent;
}

export class PlacementService {
  constructor(private readonly o: {
    settings: DecisionSettings;
    reservations: PendingReservations;
    view: PlacementView;
    log: LogFn;
    clock?: () => number;
  }) {}

  /**
   * Places the VM and books it on the chosen host, in one synchronous step. Throws
   * NoSuitableHostError (with each host's excluding filter) when no host can take it; the
   * decision is logged either way.
   */
  placeAndReserve(req: PlacementRequest): PlacementDecision {
    const { settings: s, reservations, view, log } = this.o;
    const now = (this.o.clock ?? Date.now)();
    const hosts = view.schedHosts(req.hosts);
    const pending = reservations.list();
    const placement = schedule({ vm: req.vm, hosts, running: view.running(), pending, policy: req.policy, requestedHostId: req.requestedHostId }, s);
    const names = new Map(req.hosts.map((h) => [h.id, h.name]));
    const fields = {
      vm: req.vm.vmId, policy: placement.policy, chosen: placement.hostId, requestedHost: req.requestedHostId,
      memoryMiB: req.vm.memoryMiB, vcpus: req.vm.vcpus, pendingStarts: pending.length,
      scores: placement.scores.map((x) => ({ ...x, host: names.get(x.hostId) })),
      excluded: placement.excluded.map((x) => ({ ...x, host: names.get(x.hostId) })),
      ...(req.correlationId !== undefined && { correlationId: req.correlationId }),
    };
    if (placement.hostId === null) {
      log('info', 'placement: no host can take the VM', fields);
      throw new NoSuitableHostError(placement);
    }
    const reservation = reservations.reserve(req.vm, placement.hostId, now);
    log('info', 'placement: VM placed and reserved', fields);
    const best = placement.scores[0]!;
    const event = decisionEvent(now, 'vm.placed', 'info',
      `placed on ${names.get(placement.hostId) ?? placement.hostId} by ${placement.policy} (score ${best.score}, memory ${best.memoryPct} %, vCPUs ${best.vcpuPct} % after it)`
      + (placement.excluded.length > 0 ? `; excluded: ${placement.excluded.map((e) => `${names.get(e.hostId) ?? e.hostId} (${e.filter})`).join(', ')}` : ''),
      { vm: req.vm.vmId, host: placement.hostId, data: { scores: placement.scores, excluded: placement.excluded, reservation } });
    return { placement, reservation, event };
  }
}

/** The scheduler's view of a VM: booked by its reservations, needing its NICs' networks, and the pool when it has disks. */
export function schedVmOf(vm: Vm): SchedVm {
  return {
    vmId: vm.id, clusterId: vm.clusterId, memoryMiB: vm.memoryReservationMiB, vcpus: vm.cpuReservation,
    requiredNetworks: [...new Set((vm.spec.nics ?? []).map((n) => n.network))].sort(),
    pinnedHostId: vm.pinnedHostId, needsPool: (vm.spec.disks ?? []).length > 0,
  };
}

/**
 * The cluster's policy as the scheduler knows it: power_saving packs; the others spread
 * (oVirt's none and vm_evenly_distributed have no placement weights of their own here).
 */
export function policyOf(cluster: Cluster, s: DecisionSettings): ClusterPolicy {
  return {
    name: cluster.policy === 'power_saving' ? 'power_saving' : 'evenly_distributed',
    highUtilizationPct: cluster.thresholds.highUtilization ?? s.highUtilizationPct,
  };
}

/** The 422's details: each host with its name, the filter that excluded it and why. */
export function exclusionsOf(e: NoSuitableHostError, hosts: readonly Host[]): { vmId: string; hosts: Array<{ hostId: string; hostName?: string; filter: string; reason: string }> } {
  const names = new Map(hosts.map((h) => [h.id, h.name]));
  return { vmId: e.details.vmId, hosts: e.details.hosts.map((x) => ({ hostId: x.hostId, ...(names.has(x.hostId) && { hostName: names.get(x.hostId)! }), filter: x.filter, reason: x.reason })) };
}
