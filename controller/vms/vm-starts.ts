// POST /vms/{id}/start, the controller side: refuse a start the VM's state forbids (409: it runs,
// may run, or a start is under way), then place it over the cluster's hosts and reserve the
// chosen host in one synchronous step (422 NoPlacement naming each host's excluding filter).
// The reservation travels with the job (params.placement) until the job ends.
import type { DecisionSettings } from '../decision-settings.js';
import type { LogFn } from '../agents/log-fn.js';
import type { PlacedStart, VmStartPlacer } from '../http/context.js';
import { ApiError } from '../http/errors.js';
import type { Host } from '../model/hosts.js';
import type { Vm } from '../model/vms.js';
import { reconcileVm } from '../reconcile/reconcile-vm.js';
import { decisionEvent } from '../decision-event.js';
import { recordDecisionEvent } from '../runtime/record-event.js';
import { NoSuitableHostError } from '../scheduler/schedule.js';
import { exclusionsOf, policyOf, schedVmOf, type PlacementService } from '../scheduler/placement-service.js';
import type { PendingReservations, PersistedPlacement } from '../scheduler/reservations.js';
import type { SchedVm } from '../scheduler/sched-types.js';
import { ConflictError } from '../store/errors.js';
import type { Store } from '../store/store.js';
import type { HostFacts, PlacementFacts } from './host-facts.js';
import type { VmReconciler } from './vm-reconciler.js';
import type { VmRegistry } from './vm-registry.js';

/** 422: no host of the cluster can take the VM; details.hosts names each host's excluding filter and why. */
export class NoPlacementError extends ApiError {
  constructor(e: NoSuitableHostError, hosts: readonly Host[]) {
    super(422, 'NoPlacement', e.message, exclusionsOf(e, hosts), { cause: e });
  }
}

export interface VmStartsOptions {
  store: Store;
  settings: DecisionSettings;
  registry: VmRegistry;
  reconciler: VmReconciler;
  reservations: PendingReservations;
  placement: PlacementService;
  facts: HostFacts;
  placementFacts: PlacementFacts;
  /** the host's agent answered its last poll (the health monitor's view) */
  answering: (hostId: string) => boolean;
  /** resolves once the registry and the reservations are loaded */
  ready: Promise<void>;
  log: LogFn;
  clock?: () => number;
}

export class VmStarts implements VmStartPlacer {
  constructor(private readonly o: VmStartsOptions) {}

  async place(vmId: string, requestedHostId: string | null, correlationId: string): Promise<PlacedStart> {
    const { reservations } = this.o;
    const reservation = await this.placeNow(await this.o.store.vms.get(vmId), requestedHostId, correlationId);
    return {
      params: { placement: reservation },
      attach: (jobId) => reservations.attach(vmId, jobId),
      cancel: () => reservations.release(vmId),
    };
  }

  /** A vm.start job that carries no placement (made without this service): placed when it runs. */
  placeForJob(vm: Vm, requestedHostId: string | null, correlationId: string): Promise<PersistedPlacement> {
    return this.placeNow(vm, requestedHostId, correlationId, true);
  }

  private async placeNow(vm: Vm, requestedHostId: string | null, correlationId: string, forJob = false): Promise<PersistedPlacement> {
    const { store, settings: s, registry, reconciler, reservations, placement, facts } = this.o;
    await this.o.ready;
    registry.define(vm);
    if (!forJob) {
      const stopping = await store.jobs.activeFor(vm.id, ['vm.stop', 'vm.shutdown']);
      if (stopping) throw new ConflictError(`VM ${vm.name} has a ${stopping.kind} job under way`, { job: stopping.id });
    }
    const cluster = await store.clusters.get(vm.clusterId);
    const hosts = await store.hosts.list({ clusterId: vm.clusterId });
    await this.freshFacts(hosts.map((h) => h.id), schedVmOf(vm));

    // From here to the reservation: synchronous, so this decision and the next see each other.
    const now = (this.o.clock ?? Date.now)();
    const held = reservations.get(vm.id);
    if (held !== undefined && !forJob) throw new ConflictError(`VM ${vm.name} has a start under way (placed on ${held.hostId})`, { hostId: held.hostId });
    const record = registry.record(vm.id)!;
    const { blockers } = reconcileVm(record, [...reconciler.reports().values()], now, s);
    if (blockers.length > 0) throw new ConflictError(`VM ${vm.name} cannot be started: ${blockers.join('; ')}`, { blockers, status: record.status });
    let decision;
    try {
      decision = placement.placeAndReserve({ vm: schedVmOf(vm), hosts, policy: policyOf(cluster, s), requestedHostId, correlationId });
    } catch (e) {
      if (!(e instanceof NoSuitableHostError)) throw e;
      const err = new NoPlacementError(e, hosts);
      void recordDecisionEvent(store, decisionEvent(now, 'vm.no-placement', 'warning', err.message, { vm: vm.id, data: err.details }), correlationId)
        .catch(() => undefined);
      throw err;
    }
    void recordDecisionEvent(store, decision.event, correlationId).catch(() => undefined);
    return decision.reservation;
  }

  /**
   * Facts are read again, before the decision, for each answering host that has none or whose
   * facts would exclude it (no pool connection, a network missing): a host must not be refused
   * on what it reported a minute ago. Hosts that do not answer are excluded as not Up anyway.
   */
  private async freshFacts(hostIds: readonly string[], vm: SchedVm): Promise<void> {
    const { facts, placementFacts, answering } = this.o;
    const stale = hostIds.filter((id) => {
      if (!answering(id)) return false;
      if (facts.get(id) === undefined) return true;
      if (vm.needsPool && !placementFacts.poolConnected(id)) return true;
      const have = new Set(placementFacts.networksOn(id));
      return vm.requiredNetworks.some((n) => !have.has(n));
    });
    await Promise.all(stale.map((id) => facts.refresh(id)));
  }
}
