// What the guest agent says about a running VM (IP addresses, host name, OS, ...), for
// GET /vms/{id}: read from the VM's host with VM.getStats, which answers from the agent's
// poller without waiting on the guest. Bounded by the monitoring call timeout; a host that
// does not answer in time leaves the field out rather than failing or slowing the GET.
import { GuestInfoFields } from '../../api/guest-info.js';
import type { VmGuestInfo } from '../model/guest-info.js';
import type { AgentLinks } from '../agents/agent-links.js';
import type { DecisionSettings } from '../decision-settings.js';
import type { VmRegistry } from './vm-registry.js';

const FIELDS = Object.keys(GuestInfoFields) as (keyof VmGuestInfo)[];
/** statuses in which a guest agent can have reported */
const RUNNING = new Set(['Up', 'Paused', 'Powering up', 'Powering down', 'Migration Source']);

export interface GuestInfoDeps {
  links: AgentLinks;
  registry: VmRegistry;
  settings: DecisionSettings;
}

export class GuestInfoReader {
  constructor(private readonly d: GuestInfoDeps) {}

  async read(vmId: string, correlationId: string): Promise<VmGuestInfo | undefined> {
    const rec = this.d.registry.record(vmId);
    if (!rec?.hostId || !RUNNING.has(rec.status)) return undefined;
    try {
      const r = await this.d.links.call(rec.hostId, 'VM.getStats', { vmID: vmId }, { correlationId, timeoutMs: this.d.settings.pollTimeoutMs });
      const s = r.statsList[0];
      if (!s) return undefined;
      const out: Record<string, unknown> = {};
      for (const f of FIELDS) if (s[f] !== undefined) out[f] = s[f];
      return out as VmGuestInfo;
    } catch {
      return undefined; // the VM's own status says whether its host is there; the guest's report is a bonus
    }
  }
}
