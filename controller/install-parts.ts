// The controller's parts on one runtime, and the few places where one part reads another's view:
// placement takes pool connection from the storage part and the networks up on a host from the
// networks part. main.ts and the tests that build "the controller as it runs" call this.
import type { ApiContext } from './http/context.js';
import type { ControllerRuntime } from './runtime/controller-runtime.js';
import type { DecisionSettings } from './decision-settings.js';
import type { Store } from './store/store.js';
import type { LogFn } from './agents/log-fn.js';
import { installStorage, type InstallStorageOptions } from './storage/install.js';
import { installVms } from './vms/install.js';
import { installNetworks } from './networks/install.js';
import { installBalancing } from './balancing/install.js';
import { maintenanceRequests } from './balancing/host-requests.js';
import { installMigration } from './migration/install.js';
import { installVmImages } from './vm-images/install.js';
import { installTemplates } from './templates/install.js';

export function installParts(runtime: ControllerRuntime, store: Store, settings: DecisionSettings, log: LogFn, api?: ApiContext,
  o: { storage?: InstallStorageOptions } = {}) {
  const storage = installStorage(runtime, store, settings, log, o.storage);
  installTemplates(storage);
  const networks = installNetworks(runtime, store, settings, log);
  const vms = installVms(runtime, store, settings, log, api);
  // The storage part's connector knows each host's pool connection first-hand; a host it has not
  // looked at yet falls back to what the agent reports.
  const reportedPool = vms.placementFacts.poolConnected;
  vms.placementFacts.poolConnected = (hostId) => {
    const v = storage.pool.get(hostId);
    return v ? storage.pool.isConnected(hostId, v.poolId) : reportedPool(hostId);
  };
  // The networks part reads each host's networks (up, as last seen) and applies what it lacks; a
  // host it has not read yet falls back to what the agent reported.
  const reportedNetworks = vms.placementFacts.networksOn;
  vms.placementFacts.networksOn = (hostId) => networks.view.observedAt(hostId) !== undefined ? networks.networksOnHost(hostId) : reportedNetworks(hostId);
  const migration = installMigration(runtime, store, settings, log, vms, storage, api);
  // power_saving parks and activates hosts through the same maintenance flow as an admin.
  const hostRequest = maintenanceRequests({ store, maintenance: migration.maintenance, submit: (job) => runtime.executor.submit(job), log });
  const balancing = installBalancing(runtime, store, settings, log, vms, { hostRequest });
  const vmImages = installVmImages(runtime, vms, storage, api);
  return { storage, networks, vms, balancing, migration, vmImages };
}
