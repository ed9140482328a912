// The controller's view of its cluster networks: what is desired (the store's networks and
// hosts, re-read at each reconcile pass and after a job) and what each host last showed
// (Host.getNetworkCapabilities). The health monitor asks it synchronously at every poll which
// required networks a host lacks, and the scheduler which networks a host has; both are
// answered from memory, never by a call.
import type { NetworkCapabilitiesT } from '../../api/network.js';
import type { Network } from '../model/networks.js';
import type { Store } from '../store/store.js';
import { missingNetworks } from '../health/fitness.js';
import { upNetworks } from './desired.js';

/** The per-host status words shown by GET /networks/{id} (hosts.{hostId}). */
export const NET_STATUS = {
  /** recorded when the network is created: not tried on the host yet */
  pending: 'pending',
  applying: 'applying',
  /** there as asked and up */
  up: 'up',
  /** was up, is no longer there as asked (a reconcile pass sets it up again) */
  missing: 'missing',
  /** the cluster's nic map names no nic for this host */
  notAssigned: 'notAssigned',
} as const;

/** A failed attempt keeps its reason until the next attempt: "failed: <why>". */
export function failedStatus(why: string): string {
  return `failed: ${why}`;
}

/** Statuses during which a missing required network does not make the host unfit yet: it is being applied. */
const BEING_APPLIED = new Set<string>([NET_STATUS.pending, NET_STATUS.applying]);

export interface EnrolledHost {
  id: string;
  name: string;
  clusterId: string;
}

interface Observed {
  /** the managed networks up on the host */
  up: Set<string>;
  /** when the read that showed them began */
  at: number;
}

export class ClusterNetworkView {
  private networks: Network[] = [];
  private hosts = new Map<string, EnrolledHost>();
  private applying = new Set<string>();
  private readonly observed = new Map<string, Observed>();
  /** what missingRequired last answered per host */
  private readonly reported = new Map<string, Set<string>>();

  constructor(private readonly store: Store, private readonly clock: () => number = Date.now) {}

  /** Re-reads the networks, the enrolled hosts and the apply jobs under way (level-triggered: the store is the desired state). */
  async refresh(): Promise<void> {
    const [networks, hosts] = await Promise.all([this.store.networks.list(), this.store.hosts.list()]);
    // Read after the networks: a change made with its job (POST, PATCH) is then seen with that job.
    const jobs = await this.store.jobs.unfinished();
    this.applying = new Set(jobs.filter((j) => j.kind === 'network.apply').map((j) => j.targetId));
    this.networks = networks;
    this.hosts = new Map(hosts.filter((h) => h.certFingerprint !== null).map((h) => [h.id, { id: h.id, name: h.name, clusterId: h.clusterId }]));
    for (const id of this.observed.keys()) if (!this.hosts.has(id)) { this.observed.delete(id); this.reported.delete(id); }
  }

  /** A network.apply job for the network is pending or running (as of the last refresh): the reconciler leaves it to the job. */
  applyJobUnderWay(networkId: string): boolean {
    return this.applying.has(networkId);
  }

  enrolledHosts(): EnrolledHost[] {
    return [...this.hosts.values()];
  }

  networksOf(clusterId: string): Network[] {
    return this.networks.filter((n) => n.clusterId === clusterId);
  }

  /**
   * Records what the host showed, to a read begun at `readStartedAt` (default now). A read begun
   * before the one already recorded is dropped: reads of one host overlap (the reconciler's, an
   * apply job's check after setupNetworks), and the older one, finishing last, would put back the
   * networks as they were before the setup: the host turned NonOperational for a network it has.
   */
  observe(hostId: string, caps: Pick<NetworkCapabilitiesT, 'networks'>, readStartedAt: number = this.clock()): void {
    const seen = this.observed.get(hostId);
    if (seen !== undefined && seen.at > readStartedAt) return;
    this.observed.set(hostId, { up: new Set(upNetworks(caps)), at: readStartedAt });
  }

  /** When the host's networks were last read; undefined if never (since this controller started). */
  observedAt(hostId: string): number | undefined {
    return this.observed.get(hostId)?.at;
  }

  /**
   * The host's cluster networks that are up on it, as last seen: the scheduler's 'networks'
   * filter input. Empty while never seen, so nothing needing a network goes to a host whose
   * networks are unknown.
   */
  networksOnHost(hostId: string): string[] {
    const h = this.hosts.get(hostId);
    const seen = this.observed.get(hostId);
    if (h === undefined || seen === undefined) return [];
    return this.networksOf(h.clusterId).map((n) => n.name).filter((name) => seen.up.has(name)).sort();
  }

  /**
   * The cluster's REQUIRED networks the host lacks: the health monitor's fitness input (it asks
   * at every poll). Unknown is not missing: a host whose networks were never read gets no reason
   * yet (they are read at once on connection). A network being applied there (pending, applying)
   * is not counted while that attempt runs, so adding a required network does not flap every fit
   * host; a host already unfit for it stays so until the network is really up.
   */
  missingRequired(hostId: string): string[] {
    const h = this.hosts.get(hostId);
    const seen = this.observed.get(hostId);
    if (h === undefined || seen === undefined) return [];
    const before = this.reported.get(hostId);
    const missing = this.networksOf(h.clusterId)
      .filter((n) => n.required && !seen.up.has(n.name))
      .filter((n) => !BEING_APPLIED.has(n.hosts[hostId] ?? '') || before?.has(n.name) === true)
      .map((n) => n.name);
    this.reported.set(hostId, new Set(missing));
    return missingNetworks(missing, []);
  }

  statusOf(networkId: string, hostId: string): string | undefined {
    return this.networks.find((n) => n.id === networkId)?.hosts[hostId];
  }

  /** Writes the host's status for the network when it changed (store and this view). */
  async setStatus(networkId: string, hostId: string, status: string): Promise<void> {
    const n = this.networks.find((x) => x.id === networkId);
    if (n !== undefined && n.hosts[hostId] === status) return;
    await this.store.networks.setHostStatus(networkId, hostId, status);
    if (n !== undefined) n.hosts = { ...n.hosts, [hostId]: status };
  }
}
