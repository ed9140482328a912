// Looking for a VM on every host, with fresh lists (Host.getVMList), as reconcile's host
// reports: what a resumed start or a stop checks before it acts, rather than trust the
// monitor's view, which a restarted controller may not have yet.
import type { AgentLinks } from '../agents/agent-links.js';
import { errorFields } from '../agents/log-fn.js';
import type { HealthMonitor } from '../monitor/health-monitor.js';
import { agentAnswering } from '../health/host-status.js';
import type { HostReport, ReportedVm } from '../reconcile/vm-record.js';

export interface FreshLists {
  /** one report per host; a host that did not answer has no list (reconcile trusts nothing of it) */
  reports: HostReport[];
  /** hosts that did not answer, with why */
  unanswered: Record<string, string>;
}

export async function listEveryHost(links: AgentLinks, monitor: Pick<HealthMonitor, 'health'>, timeoutMs: number, correlationId: string,
  clock: () => number = Date.now): Promise<FreshLists> {
  const unanswered: Record<string, string> = {};
  const reports = await Promise.all(links.hostIds().map(async (hostId): Promise<HostReport> => {
    const known = monitor.health(hostId)?.status ?? 'Installing';
    try {
      const r = await links.call(hostId, 'Host.getVMList', {}, { timeoutMs, correlationId });
      const vms = new Map<string, ReportedVm>(r.vmList.map((v) => [v.vmId, { status: v.status, ...(v.external && { external: true }) }]));
      // It answered now: its list is current, unless its agent is still recovering (incomplete list).
      const status = known === 'Initializing' || (agentAnswering(known) && known !== 'Up') ? known : 'Up';
      return { hostId, status, vms, at: clock() };
    } catch (e) {
      unanswered[hostId] = String(errorFields(e)['error']);
      return { hostId, status: known === 'Up' ? 'Connecting' : known };
    }
  }));
  return { reports, unanswered };
}

/** The hosts whose fresh list shows the VM, with its status there. */
export function sightings(lists: FreshLists, vmId: string): Array<{ hostId: string; status: ReportedVm['status'] }> {
  const out: Array<{ hostId: string; status: ReportedVm['status'] }> = [];
  for (const r of lists.reports) {
    const v = r.vms?.get(vmId);
    if (v !== undefined) out.push({ hostId: r.hostId, status: v.status });
  }
  return out;
}
