// The network.apply job (POST /clusters/{id}/networks, PATCH /networks/{id}): the network on
// every enrolled host of its cluster, one host after the other, each action a recorded step.
// A host that cannot get it does not stop the others; the job fails at the end naming them.
// Resumed after a controller restart it simply runs again: each host's networks are read
// before anything is sent, so what is already there is not set up twice.
import type { JobContext, JobHandler } from '../jobs/executor.js';
import { JobFailure } from '../jobs/job-failure.js';
import type { Store } from '../store/store.js';
import type { HostNetworkApplier } from './host-applier.js';
import type { ClusterNetworkView } from './network-view.js';

export function networkApplyHandler(store: Store, view: ClusterNetworkView, applier: HostNetworkApplier): JobHandler {
  return async (ctx: JobContext) => {
    await view.refresh();
    const network = await store.networks.get(ctx.job.targetId, 'targetId');
    const hosts = view.enrolledHosts().filter((h) => h.clusterId === network.clusterId).sort((a, b) => a.name.localeCompare(b.name));
    const failed: Record<string, string> = {};
    const outcomes: Record<string, string> = {};
    for (const [i, host] of hosts.entries()) {
      const r = await applier.ensure(host, network, {
        correlationId: ctx.correlationId, signal: ctx.signal, resumed: ctx.resumed,
        step: (name, fn) => ctx.step(name, fn, { hostId: host.id }),
      });
      if (r.ok) outcomes[host.name] = r.action === 'present' ? 'already present' : 'set up';
      else if ('error' in r) failed[host.name] = r.error;
      else if (network.required) failed[host.name] = 'no nic given for this host in the network\'s nic map';
      else outcomes[host.name] = 'not assigned (no nic given)';
      await ctx.progress(Math.round(((i + 1) / hosts.length) * 100));
    }
    if (hosts.length === 0) await ctx.progress(100);
    await ctx.remember('outcomes', outcomes);
    const names = Object.keys(failed);
    if (names.length > 0) {
      throw new JobFailure('NetworkNotApplied',
        `network ${network.name} is not set up on ${names.length} of ${hosts.length} host(s): ${names.map((h) => `${h}: ${failed[h]}`).join('; ')}`,
        { network: network.name, required: network.required, failed, ...(Object.keys(outcomes).length > 0 && { outcomes }) });
    }
  };
}
