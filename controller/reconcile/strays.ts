// Hostvisor VMs an agent runs that the store does not know (a lost store write, a VM created
// past the controller). They are reported, never touched: the agent's running state wins, and
// an operator decides. External VMs (defined outside Hostvisor) are not strays.

import { decisionEvent, type DecisionEvent } from '../decision-event.js';
import { listTrusted, type HostReport } from './vm-record.js';

export interface Stray {
  hostId: string;
  vmId: string;
  status: string;
}

export function findStrays(known: ReadonlySet<string>, hosts: readonly HostReport[]): Stray[] {
  const out: Stray[] = [];
  for (const h of hosts) {
    if (!listTrusted(h)) continue;
    for (const [vmId, vm] of h.vms) {
      if (!known.has(vmId) && vm.external !== true) out.push({ hostId: h.hostId, vmId, status: vm.status });
    }
  }
  return out.sort((a, b) => (a.vmId + a.hostId < b.vmId + b.hostId ? -1 : 1));
}

/** An event for each stray not reported before (`reported` holds "host/vm" keys). */
export function strayEvents(strays: readonly Stray[], reported: ReadonlySet<string>, now: number): DecisionEvent[] {
  return strays.filter((x) => !reported.has(`${x.hostId}/${x.vmId}`)).map((x) => decisionEvent(now, 'vm.stray', 'warning',
    `${x.hostId} runs a Hostvisor VM the store does not know (${x.status}); left as it is`, { host: x.hostId, vm: x.vmId }));
}
