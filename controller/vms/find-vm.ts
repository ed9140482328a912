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

/**
 * How long to wait for a link's connection before asking: a link that has not connected once
 * since this controller started (it has just started: a resumed job must not take its hosts
 * for lost) gets the connect bound; one connecting now gets a poll's bound, as the monitor
 * gives it; one that lost its connection gets none: its host is not answering.
 */
function connectWaitMs(links: AgentLinks, hostId: string, s: ListSettings): number {
  const st = links.get(hostId)?.state;
  if (st === undefined || st.phase === 'connected' || st.phase === 'closed') return 0;
  if (st.connections === 0) return s.agentConnectTimeoutMs;
  return st.phase === 'connecting' ? s.pollTimeoutMs : 0;
}

export interface ListSettings { pollTimeoutMs: number; agentConnectTimeoutMs: number }

export async function listEveryHost(links: AgentLinks, monitor: Pick<HealthMonitor, 'health'>, s: ListSettings, correlationId: string,
  clock: () => number = Date.now): Promise<FreshLists> {
  const unanswered: Record<string, string> = {};
  const reports = await Promise.all(links.hostIds().map(async (hostId): Promise<HostReport> => {
    const known = monitor.health(hostId)?.status ?? 'Installing';
    try {
      const waitMs = connectWaitMs(links, hostId, s);
      if (waitMs > 0) await links.get(hostId)!.whenConnected(waitMs);
      const r = await links.call(hostId, 'Host.getVMList', {}, { timeoutMs: s.pollTimeoutMs, correlationId });
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
