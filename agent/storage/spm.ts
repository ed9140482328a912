// The SPM role: at most one host may change shared storage metadata. It is
// held as a sanlock lease (resource SDM on the master domain's leases area),
// in the lockspace of the master domain where every host has its host id.
// The lease version (lver) grows with every spmStart; every SPM write checks
// that this host still holds the lease at the lver it started with. A lost
// lease ends the role at once.
import type { Logger } from '../log.js';
import { PhaseTimer } from '../log.js';
import { UnavailableError } from '../../api/errors.js';
import { LeaseIoError } from './errors.js';
import { isSanlockError, type LeaseWatch, type Sanlock } from './sanlock.js';

export interface SpmLeaseArea {
  /** Lockspace name: the master domain's UUID. */
  lockspace: string;
  idsPath: string;
  leasesPath: string;
  /** Offset of the SPM resource in the leases area. */
  leaseOffset: number;
}

export interface SpmStatus {
  spmStatus: 'Free' | 'SPM' | 'Contend';
  spmId: number;
  spmLver: number;
}

export interface SpmRoleOptions {
  sanlock: Sanlock;
  hostId: number;
  area: SpmLeaseArea;
  ioTimeoutSec: number;
  watchIntervalMs: number;
  log: Logger;
  /** Called once when the role ends without spmStop (lease lost). */
  onLost: (reason: string) => void;
}

export const SPM_RESOURCE = 'SDM';
// Our own signal for sanlock's "your lockspace failed" notice (see sanlock.ts).
const NOTIFY_SIGNAL: NodeJS.Signals = 'SIGUSR2';

export class SpmRole {
  private fd: number | undefined;
  private watch: LeaseWatch | undefined;
  private lver = -1;
  private active = false;
  private starting: Promise<number> | undefined;

  constructor(private readonly o: SpmRoleOptions) {}

  get isSpm(): boolean { return this.active; }
  get currentLver(): number { return this.active ? this.lver : -1; }

  private lease() {
    return { lockspace: this.o.area.lockspace, resource: SPM_RESOURCE, path: this.o.area.leasesPath, offset: this.o.area.leaseOffset };
  }

  /** Joins the lockspace (if needed) with this host's id. */
  async joinLockspace(): Promise<void> {
    const a = this.o.area;
    const st = await this.o.sanlock.inqLockspace(a.lockspace, this.o.hostId, a.idsPath, 0);
    if (st === 'joined') return;
    try {
      if (st === 'absent') await this.o.sanlock.addLockspace(a.lockspace, this.o.hostId, a.idsPath, 0, this.o.ioTimeoutSec);
    } catch (e) {
      // Someone else (another start) is adding it right now: wait for that instead.
      if (!isSanlockError(e, 'EEXIST') && !isSanlockError(e, 'EINPROGRESS')) throw e;
    }
    // Joining takes about 2 × io_timeout + 1 s; allow generously more, but not forever.
    const until = Date.now() + (4 * this.o.ioTimeoutSec + 10) * 1000;
    while (Date.now() < until) {
      if (await this.o.sanlock.inqLockspace(a.lockspace, this.o.hostId, a.idsPath, 0) === 'joined') return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new UnavailableError(`could not join lockspace ${a.lockspace} as host ${this.o.hostId}`);
  }

  /** Acquires the SPM lease; fails fast with 40 (unavailable) when another host holds it. Returns the new lver. */
  spmStart(): Promise<number> {
    if (this.active) return Promise.resolve(this.lver);
    this.starting ??= this.doStart().finally(() => { this.starting = undefined; });
    return this.starting;
  }

  private async doStart(): Promise<number> {
    const timer = new PhaseTimer();
    await this.joinLockspace();
    timer.mark('lockspace');
    // A handler must exist before sanlock may signal us (SIGUSR2 would terminate the agent).
    if (process.listenerCount(NOTIFY_SIGNAL) === 0) process.on(NOTIFY_SIGNAL, () => {});
    this.fd ??= await this.o.sanlock.registerProcess({ restrictSigkill: true, notifySignal: NOTIFY_SIGNAL });
    const l = this.lease();
    let held;
    try {
      held = await this.o.sanlock.acquire(this.fd, l.lockspace, l.resource, l.path, l.offset);
    } catch (e) {
      if (isSanlockError(e) && e.heldElsewhere) {
        const s = await this.status().catch(() => undefined);
        throw new UnavailableError(`another host is SPM${s && s.spmId > 0 ? ` (host ${s.spmId}, lver ${s.spmLver})` : ''}`, { cause: e, data: s ? { ...s } : undefined });
      }
      // Anything else from sanlock here is the lease's I/O (a dblock that could not be read or
      // written in time, e.g. on a saturated disk): a named storage failure, not an internal one.
      if (isSanlockError(e)) throw new LeaseIoError(`the SPM lease could not be acquired: ${e.message}`, { cause: e, data: { sanlockCode: e.codeName } });
      throw e;
    }
    timer.mark('acquire');
    this.lver = held.lver;
    this.active = true;
    this.watch = this.o.sanlock.watchLease(this.fd, l, {
      intervalMs: this.o.watchIntervalMs, lver: held.lver, signal: NOTIFY_SIGNAL,
      lockspace: { hostId: this.o.hostId, path: this.o.area.idsPath, offset: 0 },
    });
    void this.watch.lost.then((loss) => this.lost(`${loss.reason}: ${loss.detail}`));
    this.o.log.info('SPM started', { hostId: this.o.hostId, lver: this.lver, ...timer.fields() });
    return this.lver;
  }

  private lost(reason: string): void {
    if (!this.active) return;
    this.active = false; // stop acting as SPM at once, before anything else
    this.watch?.stop();
    this.o.log.error('SPM lease lost; no longer SPM', { reason, lver: this.lver });
    if (this.fd !== undefined) void this.o.sanlock.releaseAll(this.fd).catch(() => {});
    this.o.onLost(reason);
  }

  async spmStop(): Promise<void> {
    if (!this.active) return;
    this.active = false;
    this.watch?.stop();
    const l = this.lease();
    if (this.fd !== undefined) await this.o.sanlock.release(this.fd, l.lockspace, l.resource, l.path, l.offset);
    this.o.log.info('SPM stopped', { lver: this.lver });
  }

  /** Who holds the lease, from the lease itself (any host can ask). */
  async status(): Promise<SpmStatus> {
    const s = await this.o.sanlock.spmStatus(this.lease());
    // As VDSM: this host's role (SPM, Contend while its own spmStart runs, else Free); spmId/spmLver name the holder.
    return { spmStatus: this.active ? 'SPM' : this.starting ? 'Contend' : 'Free', spmId: s.spmId, spmLver: s.spmLver };
  }

  /**
   * Before every SPM write: this host still holds the lease, at the lver it
   * started with. Throws 40 (unavailable) otherwise and ends the role.
   */
  async assertSpm(): Promise<number> {
    if (!this.active || this.fd === undefined) throw new UnavailableError('this host is not the SPM');
    const held = await this.o.sanlock.inquire(this.fd).catch((e: unknown) => {
      if (isSanlockError(e, 'EBUSY')) return undefined; // an acquire/release in flight on our registration
      throw e;
    });
    if (held === undefined) return this.lver;
    const mine = held.find((h) => h.lockspace === this.o.area.lockspace && h.resource === SPM_RESOURCE);
    if (!mine || mine.lver !== this.lver) {
      this.lost(mine ? `lver changed ${this.lver} -> ${mine.lver}` : 'lease no longer held');
      throw new UnavailableError('this host is no longer the SPM');
    }
    return this.lver;
  }

  /**
   * Leaving the pool: release the lease, the registration, and this host's id
   * in the lockspace. True when the lockspace is left (by us, or already by
   * the domain monitor): only then may the ids and leases LVs be deactivated,
   * as sanlock keeps them open while it is joined.
   */
  async close(): Promise<boolean> {
    await this.spmStop().catch((e: unknown) => this.o.log.warn('SPM lease not released', { err: e }));
    if (this.fd !== undefined) await this.o.sanlock.unregister(this.fd).catch(() => {});
    this.fd = undefined;
    const a = this.o.area;
    const state = () => this.o.sanlock.inqLockspace(a.lockspace, this.o.hostId, a.idsPath, 0).catch(() => 'unknown' as const);
    if (await state() === 'absent') return true;
    // UNUSED: never take the lockspace away from leases something else still holds.
    const err = await this.o.sanlock.remLockspace(a.lockspace, this.o.hostId, a.idsPath, 0, { unused: true }).then(() => undefined, (e: unknown) => e);
    const left = await state() === 'absent';
    if (!left) this.o.log.info('host id kept in the lockspace', { lockspace: a.lockspace, hostId: this.o.hostId, ...(err === undefined ? {} : { err }) });
    return left;
  }
}
