// POST /vms/{id}/migrate, the controller side: refuse a migration the VM's state forbids (409:
// not Up on a host, pinned, something else under way), then place it over the cluster's hosts
// other than its own with the same filters as a start, and reserve the destination in the same
// synchronous step (422 NoPlacement naming each host's filter). The reservation travels with the
// vm.migrate job (params.placement) until the job ends, as a start's does.
import type { LogFn } from '../agents/log-fn.js';
import type { DecisionSettings } from '../decision-settings.js';
import { decisionEvent } from '../decision-event.js';
import type { PlacedStart } from '../http/context.js';
import type { Vm } from '../model/vms.js';
import { recordDecisionEvent } from '../runtime/record-event.js';
import { policyOf, schedVmOf, type PlacementService } from '../scheduler/placement-service.js';
import type { PendingReservations, PersistedPlacement } from '../scheduler/reservations.js';
import { NoSuitableHostError } from '../scheduler/schedule.js';
import { ConflictError } from '../store/errors.js';
import type { Store } from '../store/store.js';
import type { HostFacts } from '../vms/host-facts.js';
import { NoPlacementError } from '../vms/vm-starts.js';
import type { VmRegistry } from '../vms/vm-registry.js';

/** Jobs that change where or whether the VM runs: one at a time. */
export const VM_MOVING_JOBS = ['vm.start', 'vm.stop', 'vm.shutdown', 'vm.migrate'] as const;

export interface VmMigrationPlacer {
  /** 409 when the VM cannot be migrated now, 422 NoPlacement when no other host can take it. */
  place(vmId: string, requestedHostId: string | null, correlationId: string): Promise<PlacedStart>;
}

export interface MigrationPlacementOptions {
  store: Store;
  settings: DecisionSettings;
  registry: VmRegistry;
  reservations: PendingReservations;
  placement: PlacementService;
  facts: HostFacts;
  ready: Promise<void>;
  log: LogFn;
  clock?: () => number;
}

export class MigrationPlacement implements VmMigrationPlacer {
  constructor(private readonly o: MigrationPlacementOptions) {}

  async place(vmId: string, requestedHostId: string | null, correlationId: string): Promise<PlacedStart> {
    const { store, reservations } = this.o;
    const vm = await store.vms.get(vmId);
    const busy = await store.jobs.activeFor(vm.id, [...VM_MOVING_JOBS]);
    if (busy) throw new ConflictError(`VM ${vm.name} has a ${busy.kind} job under way`, { job: busy.id });
    const reservation = await this.placeNow(vm, requestedHostId, correlationId);
    return {
      params: { vmId, hostId: requestedHostId, placement: reservation },
      attach: (jobId) => reservations.attach(vmId, jobId),
      cancel: () => reservations.release(vmId),
    };
  }

  /** The source host, if the VM is Up on one (the registry follows the agents' lists and events). */
  sourceOf(vmId: string): string | null {
    const r = this.o.registry.record(vmId);
    return r !== undefined && r.status === 'Up' && r.hostId !== null ? r.hostId : null;
  }

  /** Places the VM on a host other than its own and reserves it; for a job made without a placement (balancing), when it runs. */
  async placeNow(vm: Vm, requestedHostId: string | null, correlationId: string, forJob = false): Promise<PersistedPlacement> {
    const { store, settings: s, registry, reservations, placement, facts } = this.o;
    await this.o.ready;
    registry.define(vm);
    const source = this.sourceOf(vm.id);
    const rec = registry.record(vm.id);
    if (source === null) throw new ConflictError(`VM ${vm.name} is ${rec?.status ?? vm.status}${rec?.hostId ? ` on ${rec.hostId}` : ''}, not Up on a host: only a running VM migrates`, { status: rec?.status ?? vm.status });
    if (vm.pinnedHostId !== null) throw new ConflictError(`VM ${vm.name} is pinned to host ${vm.pinnedHostId}: it does not migrate`, { pinnedHostId: vm.pinnedHostId });
    if (requestedHostId === source) throw new ConflictError(`VM ${vm.name} already runs on host ${source}`, { field: 'body.host', hostId: source });
    const cluster = await store.clusters.get(vm.clusterId);
    const hosts = (await store.hosts.list({ clusterId: vm.clusterId })).filter((h) => h.id !== source);
    await facts.ensure(hosts.map((h) => h.id));

    // From here to the reservation: synchronous, so concurrent placements see each other.
    const held = reservations.get(vm.id);
    if (held !== undefined && !forJob) throw new ConflictError(`VM ${vm.name} has a start or migration under way (to ${held.hostId})`, { hostId: held.hostId });
    try {
      return placement.placeAndReserve({ vm: schedVmOf(vm), hosts, policy: policyOf(cluster, s), requestedHostId, correlationId }).reservation;
    } catch (e) {
      if (!(e instanceof NoSuitableHostError)) throw e;
      const err = new NoPlacementError(e, hosts);
      const now = (this.o.clock ?? Date.now)();
      void recordDecisionEvent(store, decisionEvent(now, 'vm.no-placement', 'warning', `no destination for a migration from ${source}: ${err.message}`,
        { vm: vm.id, host: source, data: err.details }), correlationId).catch(() => undefined);
      throw err;
    }
  }
}
