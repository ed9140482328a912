// Networks once per cluster, wired into the runtime by one call from main.ts: the network.apply
// job handler, the reconcile loop, and the host fitness the health monitor asks at every poll
// (a REQUIRED cluster network not up on a host makes it NonOperational with that reason).
import type { LogFn } from '../agents/log-fn.js';
import type { DecisionSettings } from '../decision-settings.js';
import type { ControllerRuntime } from '../runtime/controller-runtime.js';
import type { Store } from '../store/store.js';
import { networkApplyHandler } from './apply-job.js';
import { HostNetworkApplier } from './host-applier.js';
import { NetworkReconciler } from './network-reconciler.js';
import { ClusterNetworkView } from './network-view.js';

export interface InstalledNetworks {
  view: ClusterNetworkView;
  applier: HostNetworkApplier;
  reconciler: NetworkReconciler;
  /** The cluster networks up on the host as last seen ([] while unknown): the scheduler's SchedHost.networks. */
  networksOnHost(hostId: string): string[];
}

export function installNetworks(runtime: ControllerRuntime, store: Store, settings: DecisionSettings, log: LogFn): InstalledNetworks {
  const view = new ClusterNetworkView(store);
  const applier = new HostNetworkApplier({ links: runtime.links, view, settings, log });
  const reconciler = new NetworkReconciler({ links: runtime.links, view, applier, settings, log });
  runtime.executor.register('network.apply', networkApplyHandler(store, view, applier));
  // Composed with what another part (storage) installed, in either order: each adds its reasons.
  const before = runtime.hostContext.fitness;
  runtime.hostContext.fitness = (hostId) => {
    const other = before(hostId);
    const missing = view.missingRequired(hostId);
    return missing.length === 0 ? other : { ...other, missingRequiredNetworks: [...new Set([...other.missingRequiredNetworks, ...missing])].sort() };
  };
  runtime.addLoop(reconciler);
  return { view, applier, reconciler, networksOnHost: (hostId) => view.networksOnHost(hostId) };
}
