// What placement and starts need to know of each host beyond its health poll: its logical CPUs
// and the networks up on it (Host.getCapabilities), and whether it is connected to its
// cluster's storage pool (StoragePool.getInfo answers for that pool). Read at each new
// connection to the agent and every hostFactsRefreshMs, and on demand before a decision.
import type { AgentLinks } from '../agents/agent-links.js';
import { newCorrelationId } from '../agents/agent-link.js';
import { errorFields, noLog, type LogFn } from '../agents/log-fn.js';
import type { DecisionSettings } from '../decision-settings.js';
import type { Store } from '../store/store.js';

export interface HostNetwork {
  bridged: boolean;
  /** the bridge, for a bridged network: what a VM NIC joins */
  iface: string;
}

export interface HostFactsRecord {
  cpus: number;
  memSizeMiB: number;
  networks: ReadonlyMap<string, HostNetwork>;
  poolConnected: boolean;
  /** when these were read (ms since the epoch) */
  at: number;
}

/**
 * Where placement takes the networks present on a host and its pool connection. The defaults
 * read the agent's own reports (HostFacts); the networks and storage parts may install theirs
 * (what they applied and verified) in place of these.
 */
export interface PlacementFacts {
  networksOn(hostId: string): readonly string[];
  poolConnected(hostId: string): boolean;
}

export class HostFacts {
  private readonly facts = new Map<string, HostFactsRecord>();
  private readonly reading = new Map<string, Promise<HostFactsRecord | undefined>>();
  private readonly log: LogFn;
  private detach: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly o: { links: AgentLinks; store: Store; settings: DecisionSettings; log?: LogFn; clock?: () => number }) {
    this.log = o.log ?? noLog;
  }

  /** The defaults of PlacementFacts: what the agents last reported. */
  readonly reported: PlacementFacts = {
    networksOn: (hostId) => [...(this.facts.get(hostId)?.networks.keys() ?? [])],
    poolConnected: (hostId) => this.facts.get(hostId)?.poolConnected ?? false,
  };

  start(): void {
    if (this.closed || this.detach) return;
    this.detach = this.o.links.onResync((hostId) => { void this.refresh(hostId); });
    for (const id of this.o.links.hostIds()) void this.refresh(id);
    this.timer = setInterval(() => { for (const id of this.o.links.hostIds()) void this.refresh(id); }, this.o.settings.hostFactsRefreshMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.detach?.();
    clearInterval(this.timer);
    await Promise.allSettled([...this.reading.values()]);
  }

  get(hostId: string): HostFactsRecord | undefined {
    return this.facts.get(hostId);
  }

  /** Reads the facts of the hosts that have none yet (each read bounded by pollTimeoutMs). */
  async ensure(hostIds: readonly string[]): Promise<void> {
    await Promise.all(hostIds.filter((id) => !this.facts.has(id)).map((id) => this.refresh(id)));
  }

  /** Reads the host's facts now (one read at a time per host); undefined when the agent did not answer. */
  refresh(hostId: string): Promise<HostFactsRecord | undefined> {
    const inflight = this.reading.get(hostId);
    if (inflight) return inflight;
    const p = this.read(hostId).finally(() => this.reading.delete(hostId));
    this.reading.set(hostId, p);
    return p;
  }

  private async read(hostId: string): Promise<HostFactsRecord | undefined> {
    const { links, store, settings } = this.o;
    const timeoutMs = settings.agentCallTimeoutMs;
    try {
      const caps = await links.call(hostId, 'Host.getCapabilities', {}, { timeoutMs, correlationId: newCorrelationId('facts') });
      const networks = new Map<string, HostNetwork>();
      for (const [name, n] of Object.entries(caps.networks)) networks.set(name, { bridged: n.bridged, iface: n.iface });
      const poolConnected = await this.readPool(hostId, store, timeoutMs);
      if (this.closed) return undefined;
      const rec: HostFactsRecord = { cpus: caps.onlineCpus, memSizeMiB: caps.memSize, networks, poolConnected, at: (this.o.clock ?? Date.now)() };
      this.facts.set(hostId, rec);
      return rec;
    } catch (e) {
      this.log('debug', 'host facts not read; kept as they were', { hostId, ...errorFields(e) });
      return undefined;
    }
  }

  /** Connected when the agent answers StoragePool.getInfo for its cluster's pool (309 otherwise). */
  private async readPool(hostId: string, store: Store, timeoutMs: number): Promise<boolean> {
    const host = await store.hosts.find(hostId);
    const poolId = host ? (await store.clusters.find(host.clusterId))?.poolId ?? null : null;
    if (poolId === null) return false;
    try {
      const info = await this.o.links.call(hostId, 'StoragePool.getInfo', { storagepoolID: poolId }, { timeoutMs, correlationId: newCorrelationId('facts') });
      return info.info.spUUID === poolId;
    } catch {
      return false;
    }
  }
}
