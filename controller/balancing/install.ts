// The balancing part, wired into the runtime by one call (install-parts.ts): each host's
// utilisation history fed from every health observation, and the balancing loop over it, which
// reads hosts and bookings through the VM part's placement view (the same the scheduler uses).
import type { LogFn } from '../agents/log-fn.js';
import type { DecisionSettings } from '../decision-settings.js';
import type { ControllerRuntime } from '../runtime/controller-runtime.js';
import type { Store } from '../store/store.js';
import type { VmsPart } from '../vms/install.js';
import { runtimePlacementView } from '../vms/placement-view.js';
import { BalancingLoop, type BalancingDeps } from './balancing-loop.js';
import { UtilHistory } from './history.js';

export interface BalancingPart {
  history: UtilHistory;
  loop: BalancingLoop;
}

export function installBalancing(runtime: ControllerRuntime, store: Store, settings: DecisionSettings, log: LogFn, vms: VmsPart,
  o: { hostRequest?: BalancingDeps['hostRequest']; clock?: () => number } = {}): BalancingPart {
  const history = new UtilHistory(settings.balancingHistorySamples);
  runtime.sink.listen({ health: (obs) => history.observe(obs) });
  const view = runtimePlacementView({
    monitor: runtime.monitor, latest: runtime.sink.latest, facts: vms.facts, registry: vms.registry, reservations: vms.reservations,
    placementFacts: { networksOn: (h) => vms.placementFacts.networksOn(h), poolConnected: (h) => vms.placementFacts.poolConnected(h) },
  });
  const loop = new BalancingLoop({
    store, settings, history, view, registry: vms.registry, reservations: vms.reservations,
    isSpm: (h) => runtime.hostContext.isSpm(h), submit: (job) => runtime.executor.submit(job),
    ...(o.hostRequest && { hostRequest: o.hostRequest }), ...(o.clock && { clock: o.clock }), log,
  });
  runtime.addLoop(loop);
  return { history, loop };
}
