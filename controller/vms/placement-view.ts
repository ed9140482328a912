// The hosts as placement sees them, read from the running controller at the moment of the
// decision: the status from the health monitor, the memory from the last Host.getStats, the
// CPUs from the capabilities, the networks and pool connection from PlacementFacts, and what is
// booked from the VM registry.
import type { HealthObservation } from '../monitor/observation-sink.js';
import type { HealthMonitor } from '../monitor/health-monitor.js';
import type { Host } from '../model/hosts.js';
import type { PlacementView } from '../scheduler/placement-service.js';
import type { SchedHost } from '../scheduler/sched-types.js';
import type { HostFacts, PlacementFacts } from './host-facts.js';
import type { VmRegistry } from './vm-registry.js';
import type { PendingReservations } from '../scheduler/reservations.js';

export function runtimePlacementView(o: {
  monitor: Pick<HealthMonitor, 'health'>;
  /** the last health observation per host (StoreSink.latest) */
  latest: ReadonlyMap<string, HealthObservation>;
  facts: HostFacts;
  placementFacts: PlacementFacts;
  registry: VmRegistry;
  reservations: PendingReservations;
}): PlacementView {
  return {
    schedHosts: (hosts: readonly Host[]): SchedHost[] => hosts.map((h) => {
      const f = o.facts.get(h.id);
      return {
        hostId: h.id,
        clusterId: h.clusterId,
        // A host the monitor does not follow (not enrolled) keeps its stored status: never Up.
        status: o.monitor.health(h.id)?.status ?? h.status,
        poolConnected: o.placementFacts.poolConnected(h.id),
        memTotalMiB: o.latest.get(h.id)?.stats?.memTotal ?? f?.memSizeMiB ?? 0,
        cpus: f?.cpus ?? 0,
        networks: o.placementFacts.networksOn(h.id),
      };
    }),
    // A start whose job holds a reservation is booked once, as that pending start (the 422 says so).
    running: () => o.registry.running().filter((b) => o.reservations.get(b.vmId)?.hostId !== b.hostId),
  };
}
