// The simulated "real" side for the decision simulator: hosts with power, an agent process, a
// management network and storage; the pool's SPM lease with sanlock's timing; the domains each
// host runs. The controller under test sees it only through what polls and calls return.

export const SANLOCK_ROLE_LOST_MS = 80_000;   // id_renewal_fail_seconds: the holder's role is killed
export const SANLOCK_HOST_DEAD_MS = 140_000;  // host_dead_seconds: another host may take the lease

export interface SimHost {
  id: string;
  no: number;
  memMiB: number;
  cpus: number;
  spmPriority: number;
  power: boolean;
  agent: boolean;
  mgmtNet: boolean;
  storage: boolean;
  requiredNetUp: boolean;
  /** the agent answers 99 until then */
  recoveringUntil: number;
  /** the agent starts (after power on or restart) at this time */
  agentStartsAt: number | null;
  /** domains: vmId -> when it was created */
  domains: Map<string, { createdAt: number; memoryMiB: number }>;
}

export type PollView =
  | { kind: 'failed' }
  | { kind: 'recovering' }
  | { kind: 'answered'; vms: Map<string, 'WaitForLaunch' | 'Up'>; requiredNetUp: boolean; storage: boolean;
      lease?: { role: 'SPM' | 'Free'; holder: number; lver: number } };

export class World {
  readonly hosts = new Map<string, SimHost>();
  /** the lease as on disk: the owner stays written until released or taken; renewedAt is its holder's last renewal */
  lease: { holder: string | null; lver: number; renewedAt: number } = { holder: null, lver: 0, renewedAt: 0 };
  readonly log: string[] = [];

  constructor(public now: number, specs: { id: string; memMiB: number; cpus?: number; spmPriority?: number }[]) {
    specs.forEach((s, i) => this.hosts.set(s.id, {
      id: s.id, no: i + 1, memMiB: s.memMiB, cpus: s.cpus ?? 8, spmPriority: s.spmPriority ?? 5,
      power: true, agent: true, mgmtNet: true, storage: true, requiredNetUp: true, recoveringUntil: 0, agentStartsAt: null,
      domains: new Map(),
    }));
  }

  host(id: string): SimHost {
    const h = this.hosts.get(id);
    if (h === undefined) throw new Error(`no simulated host ${id}`);
    return h;
  }

  /** Time passes: the holder renews the lease while it can (once its role is lost, never again), agents come up. */
  advance(to: number): void {
    const holder = this.lease.holder === null ? undefined : this.host(this.lease.holder);
    if (holder !== undefined && holder.power && holder.storage && this.roleHolder() === holder.id) this.lease.renewedAt = to;
    this.now = to;
    for (const h of this.hosts.values()) {
      if (h.agentStartsAt !== null && to >= h.agentStartsAt) {
        h.agent = true;
        h.agentStartsAt = null;
        h.recoveringUntil = to + 6000;
      }
    }
  }

  /** Who may act as SPM now: the owner, while its lease is renewed (or within the fail time). */
  roleHolder(): string | null {
    const h = this.lease.holder === null ? undefined : this.host(this.lease.holder);
    if (h === undefined || !h.agent) return null;
    return this.now - this.lease.renewedAt < SANLOCK_ROLE_LOST_MS ? h.id : null;
  }

  /** Who holds the lease against others: the owner until host_dead_seconds after its last renewal. */
  leaseHolder(): string | null {
    if (this.lease.holder === null) return null;
    return this.now - this.lease.renewedAt < SANLOCK_HOST_DEAD_MS ? this.lease.holder : null;
  }

  reachable(id: string): boolean {
    const h = this.host(id);
    return h.power && h.agent && h.mgmtNet;
  }

  poll(id: string): PollView {
    const h = this.host(id);
    if (!this.reachable(id)) return { kind: 'failed' };
    if (this.now < h.recoveringUntil) return { kind: 'recovering' };
    const vms = new Map([...h.domains].map(([vmId, d]) => [vmId, this.now - d.createdAt >= 2000 ? 'Up' as const : 'WaitForLaunch' as const]));
    const view: PollView = { kind: 'answered', vms, requiredNetUp: h.requiredNetUp, storage: h.storage };
    if (h.storage) {
      const owner = this.lease.holder === null ? -1 : this.host(this.lease.holder).no;
      // As the agent: spmId and spmLver are -1 / -1 when nobody holds the lease.
      view.lease = { role: this.roleHolder() === id ? 'SPM' : 'Free', holder: owner, lver: owner < 0 ? -1 : this.lease.lver };
    }
    return view;
  }

  /** StoragePool.spmStart executed on the host: takes the lease unless another holds it. */
  spmStart(id: string): { ok: true; lver: number } | { ok: false; leaseHeld: boolean } {
    const h = this.host(id);
    if (!h.storage) return { ok: false, leaseHeld: false };
    const holder = this.leaseHolder();
    if (holder === id && this.roleHolder() === id) return { ok: true, lver: this.lease.lver };
    if (holder !== null && holder !== id) return { ok: false, leaseHeld: true };
    this.lease = { holder: id, lver: this.lease.lver + 1, renewedAt: this.now };
    this.log.push(`${this.now} lease taken by ${id} at lver ${this.lease.lver}`);
    return { ok: true, lver: this.lease.lver };
  }

  spmStop(id: string): void {
    if (this.lease.holder === id) this.lease = { ...this.lease, holder: null };
  }

  /** VM.create executed on the host: false when the domain exists already (4). */
  createDomain(id: string, vmId: string, memoryMiB: number): boolean {
    const h = this.host(id);
    if (h.domains.has(vmId)) return false;
    h.domains.set(vmId, { createdAt: this.now, memoryMiB });
    return true;
  }

  destroyDomain(id: string, vmId: string): void {
    this.host(id).domains.delete(vmId);
  }

  // Faults.
  powerOff(id: string): void {
    const h = this.host(id);
    h.power = false; h.agent = false; h.agentStartsAt = null; h.domains.clear(); // the lease stays written: it expires
    this.log.push(`${this.now} ${id} power off`);
  }

  powerOn(id: string, bootMs = 20_000): void {
    const h = this.host(id);
    if (h.power) return;
    h.power = true; h.agentStartsAt = this.now + bootMs;
    this.log.push(`${this.now} ${id} power on`);
  }

  /** The agent process dies: sanlock releases the leases it held at once. */
  killAgent(id: string, restartAfterMs: number | null): void {
    const h = this.host(id);
    if (!h.agent) return;
    h.agent = false;
    h.agentStartsAt = restartAfterMs === null ? null : this.now + restartAfterMs;
    if (this.lease.holder === id) this.lease = { ...this.lease, holder: null };
    this.log.push(`${this.now} ${id} agent killed`);
  }
}
