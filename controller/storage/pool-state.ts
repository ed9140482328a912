// What the controller last observed of each host's side of its cluster's pool: connected or
// not (and why), and each pool domain as the host's monitor sees it. Held in memory only: it
// is observed again every pass, and a restarted controller observes it afresh. The SPM loop
// reads `connected`, the health monitor the unreachable domains (fitness), the storage domain
// records the per-host statuses.

/** One pool domain as one host sees it. */
export interface HostDomainView {
  /** the host's monitor read the domain's metadata at its last check */
  valid: boolean;
  /** 0 when valid, else the agent's code (379 unreachable, 2001 read failed, ...) */
  code: number;
  error?: string;
  /** this host's id is live in the domain's lockspace */
  acquired: boolean;
  totalBytes?: number;
  freeBytes?: number;
}

export type PoolLinkState =
  /** StoragePool.getInfo answered for the pool */
  | 'connected'
  /** a StoragePool.connect is under way */
  | 'connecting'
  /** the host answered that it is not connected, or the connect failed (see error) */
  | 'disconnected'
  /** the host did not answer (it is not Up, or the call failed): nothing is known */
  | 'unknown';

export interface HostPoolView {
  hostId: string;
  poolId: string;
  state: PoolLinkState;
  /** by storage domain id; only for a connected host */
  domains: Record<string, HostDomainView>;
  /** why it is not connected, or why its state is unknown */
  error: string | null;
  /** the last StoragePool.connect that failed (for its retry interval) */
  connectFailedAt: number | null;
  observedAt: number;
}

export class PoolState {
  private readonly views = new Map<string, HostPoolView>();

  get(hostId: string): HostPoolView | undefined {
    return this.views.get(hostId);
  }

  set(v: HostPoolView): void {
    this.views.set(v.hostId, v);
  }

  update(hostId: string, poolId: string, patch: Partial<Omit<HostPoolView, 'hostId' | 'poolId'>>, now: number): HostPoolView {
    const prev = this.views.get(hostId);
    const base: HostPoolView = prev?.poolId === poolId ? prev
      : { hostId, poolId, state: 'unknown', domains: {}, error: null, connectFailedAt: null, observedAt: now };
    const next = { ...base, ...patch, observedAt: now };
    this.views.set(hostId, next);
    return next;
  }

  forget(hostId: string): void {
    this.views.delete(hostId);
  }

  hostIds(): string[] {
    return [...this.views.keys()];
  }

  isConnected(hostId: string, poolId: string): boolean {
    const v = this.views.get(hostId);
    return v !== undefined && v.poolId === poolId && v.state === 'connected';
  }

  /**
   * Domains the host reports it cannot reach (the connector puts the master here when the
   * host's connect failed: a host that cannot join the pool reaches none of it). A domain the
   * host was not given yet is not unreachable: that is the controller's doing, not the host's.
   */
  unreachable(hostId: string): string[] {
    const v = this.views.get(hostId);
    if (v === undefined) return [];
    return Object.entries(v.domains).filter(([, d]) => !d.valid).map(([id]) => id);
  }
}
