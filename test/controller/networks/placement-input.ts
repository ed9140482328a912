// The scheduler's hosts as a running controller sees them: status from the health monitor,
// memory from the last Host.getStats, CPUs from Host.getCapabilities, the cluster networks up
// on each from the networks part. For tests that place VMs on real agents (must-show 4: a VM
// that needs a required network goes to the host that has it).
import type { InstalledNetworks } from '../../../controller/networks/install.js';
import type { ControllerRuntime } from '../../../controller/runtime/controller-runtime.js';
import type { SchedHost } from '../../../controller/scheduler/sched-types.js';
import type { Store } from '../../../controller/store/store.js';

export async function placementHosts(runtime: ControllerRuntime, store: Store, networks: InstalledNetworks,
  o: { clusterId: string; poolConnected?: (hostId: string) => boolean }): Promise<SchedHost[]> {
  const hosts = (await store.hosts.list({ clusterId: o.clusterId })).filter((h) => h.certFingerprint !== null);
  return Promise.all(hosts.map(async (h): Promise<SchedHost> => {
    const caps = await runtime.links.call(h.id, 'Host.getCapabilities', {}).catch(() => undefined);
    return {
      hostId: h.id,
      clusterId: h.clusterId,
      // Unknown (not tracked) is not Up.
      status: runtime.monitor.health(h.id)?.status ?? 'Connecting',
      poolConnected: o.poolConnected?.(h.id) ?? false,
      memTotalMiB: runtime.sink.latest.get(h.id)?.stats?.memTotal ?? 0,
      cpus: caps?.onlineCpus ?? 0,
      networks: networks.networksOnHost(h.id),
    };
  }));
}
