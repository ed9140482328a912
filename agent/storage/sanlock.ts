// sanlock facade: lockspaces (host ids / delta leases), resource leases
// (paxos leases such as the SPM lease), and a process registration that holds
// them. Backed by the libvirt addon's sanlock part (native/src/sanlock.cc),
// which runs every daemon or storage call off the JS thread.
//
// Model (as in VDSM):
//  - A lockspace lives in an "ids" area (one delta lease per host id). A host
//    joins it with addLockspace(name, hostId, ...): this waits about
//    2 × io_timeout + 1 s, where io_timeout is the one recorded on storage by
//    directInitLockspace (its default, 10 s, makes every join take ~21 s even
//    when addLockspace is given a smaller io_timeout; 1 s there: ~3 s).
//  - A resource lease lives in a "leases" area at an aligned offset. A process
//    holds it through a registration (registerProcess → fd): the daemon ties
//    the lease to that connection; closing it (unregister, or the process
//    dying) releases every lease held on it.
//  - Every successful acquire of a resource bumps its version, lver: the
//    first holder gets lver 1, the next 2, ... (VDSM's "spmLver").
//
// Learning that a lease was lost:
//  - Lockspace failure (storage cannot be written for 8 × io_timeout) or
//    removal: sanlock does not drop the leases from the registration; it
//    asks the holding process to go away, repeatedly, until the leases are
//    released: first the registration's killpath (renewal failure only,
//    during the kill grace period), else SIGTERM, then SIGKILL (or SIGTERM
//    again if SIGKILL is restricted). Until the process releases,
//    inquire() still lists the lease and inqLockspace() still says 'joined'.
//    So the agent must register with { restrictSigkill: true, notifySignal }
//    (a killpath of `kill -s <signal> <pid>`), treat that signal as "every
//    lease in the failed lockspace is lost", and releaseAll() promptly.
//    watchLease() does this wiring.
//  - Everything else is seen by polling inquire() on the registration (what
//    watchLease does every intervalMs): a lease missing from the list (released
//    behind our back), a different lver, or a failed inquire (the daemon
//    restarted or the connection broke: all leases are gone). inqLockspace()
//    reporting 'absent' confirms that the lockspace is gone (after release).
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import {
  AddLockspaceFlags, HostState, KillpathFlags, LockspaceStateFlags, ReleaseFlags, ResourceFlags, RestrictFlags, RemLockspaceFlags,
  sanlockBinding as raw, type Int64, type RawSanlockHeld as RawHeld, type RawSanlockHost as RawHost,
} from '../libvirt/index.js';
import { LeaseWatch, type WatchOptions } from './lease-watch.js';
import { call } from './sanlock-errors.js';

export {
  AcquireFlags, AddLockspaceFlags, HostState, KillpathFlags, LockspaceStateFlags, ReleaseFlags, RemLockspaceFlags, ResourceFlags,
  RestrictFlags, SanlockRc, sanlockRcName,
} from '../libvirt/index.js';
export { SanlockError, isSanlockError } from './sanlock-errors.js';
export { LeaseWatch, type LeaseLoss, type WatchOptions } from './lease-watch.js';

const E = osConstants.errno;

// ---------- public types ----------

export interface HostInfo {
  hostId: number;
  generation: number;
  /** The host's last delta-lease renewal (its monotonic seconds), or the owner's lease timestamp. */
  timestamp: number;
  ioTimeout: number;
  flags: number;
  /** flags & 0xf as a name: for getHosts(); 'UNKNOWN' ... 'DEAD'. */
  state: keyof typeof HostState | undefined;
}

export interface LockspaceInfo { name: string; hostId: number; path: string; offset: number; state: 'joined' | 'adding' | 'removing' }

/** A lease held by a registration. */
export interface HeldLease {
  lockspace: string;
  resource: string;
  path: string;
  offset: number;
  /** The lease version this registration got when it acquired the lease. */
  lver: number;
  flags: number;
}

/** Where a resource lease lives, and in which lockspace. */
export interface LeaseRef { lockspace: string; resource: string; path: string; offset: number }

export interface ResourceOwners {
  /** The version in the lease's leader record: the lver of its last (or current) holder; 0 if never acquired. */
  lver: number;
  /** Current holders: empty when the lease is free (released or never acquired). */
  owners: HostInfo[];
  shared: boolean;
}

/** Storage geometry for direct init: both or neither (neither: sanlock picks from the device's sector size). */
export interface Geometry { alignMiB?: 1 | 2 | 4 | 8; sectorSize?: 512 | 4096 }

export type LockspaceStatus = 'joined' | 'absent' | 'changing';

export interface RegisterOptions {
  /**
   * Never SIGKILL this process for a failed lockspace: sanlock sends SIGTERM
   * instead. Strongly advised for the agent (see notifySignal).
   */
  restrictSigkill?: boolean;
  /**
   * Ask sanlock to signal this process with `kill -s <signal> <pid>` (a
   * killpath) when a lockspace it holds leases in fails, instead of SIGTERM,
   * during the kill grace period. Handle it (watchLease does) and release.
   * The process must have a handler for that signal installed before any
   * lease can be lost: the default action of SIGUSR1/SIGUSR2 terminates it.
   */
  notifySignal?: NodeJS.Signals;
  /** A raw killpath instead of notifySignal: program, args (space separated), appendPid. */
  killpath?: { path: string; args?: string; appendPid?: boolean };
}

// ---------- the facade ----------

function num(v: Int64): number { return Number(v); }

function hostInfo(h: RawHost): HostInfo {
  const stateNum = h.flags & 0xf;
  const state = (Object.keys(HostState) as (keyof typeof HostState)[]).find((k) => HostState[k] === stateNum);
  return { hostId: num(h.hostId), generation: num(h.generation), timestamp: num(h.timestamp), ioTimeout: h.ioTimeout, flags: h.flags, state };
}

function held(r: RawHeld): HeldLease {
  return { lockspace: r.lockspace, resource: r.resource, path: r.path, offset: num(r.offset), lver: num(r.lver), flags: r.flags };
}

function geometryFlags(g: Geometry | undefined): number {
  if (!g || (g.alignMiB === undefined && g.sectorSize === undefined)) return 0;
  if (g.alignMiB === undefined || g.sectorSize === undefined) {
    throw new TypeError('sanlock geometry: give both alignMiB and sectorSize, or neither');
  }
  const align = { 1: 0x10, 2: 0x20, 4: 0x40, 8: 0x80 }[g.alignMiB];
  const sector = g.sectorSize === 512 ? 0x100 : 0x200;
  return align | sector;
}

function killBinary(): string {
  for (const p of ['/bin/kill', '/usr/bin/kill']) if (existsSync(p)) return p;
  return '/bin/kill';
}

/**
 * sanlock client for this process. Stateless apart from the addon's table of
 * registrations; one instance is enough for the agent.
 */
export class Sanlock {
  /** sanlock's text for a return code. */
  static strerror(rc: number): string {
    return raw.sanlockStrerror(rc);
  }

  /** The daemon's version ("3.8.5") and protocol; rejects (ENOENT / ECONNREFUSED) when no daemon listens on /run/sanlock. */
  async daemonVersion(): Promise<{ version: string; proto: number }> {
    const v = await call('version', () => raw.sanlockVersion());
    return { version: `${(v.version >>> 24) & 0xff}.${(v.version >>> 16) & 0xff}.${(v.version >>> 8) & 0xff}`, proto: v.proto };
  }

  /** Is a daemon answering on this mount namespace's /run/sanlock/sanlock.sock? */
  async daemonRunning(): Promise<boolean> {
    return this.daemonVersion().then(() => true, () => false);
  }

  // ----- formatting storage (no daemon needed) -----

  /**
   * Writes an empty lockspace (delta leases for every host id) at path:offset.
   * ioTimeoutSec is recorded on storage and used by every host joining it:
   * give the same small value as to addLockspace to keep joins quick.
   */
  async directInitLockspace(name: string, path: string, offset = 0, opts: Geometry & { ioTimeoutSec?: number } = {}): Promise<void> {
    await call('direct init lockspace', () => raw.sanlockDirectInitLockspace(name, path, offset, geometryFlags(opts), opts.ioTimeoutSec ?? 0));
  }

  /** Writes a free resource lease (lver 0) at path:offset. `clear` writes one that reads back as invalid. */
  async directInitResource(lockspace: string, resourceName: string, path: string, offset = 0,
    opts: Geometry & { numHosts?: number; clear?: boolean } = {}): Promise<void> {
    await call('direct init resource', () => raw.sanlockDirectInitResource(lockspace, resourceName, path, offset,
      geometryFlags(opts), opts.numHosts ?? 0, opts.clear ?? false));
  }

  // ----- lockspaces -----

  /** Joins the lockspace as hostId (blocks ~2 × io_timeout + 1 s; see the header). Rejects EEXIST if already joined. */
  async addLockspace(name: string, hostId: number, path: string, offset = 0, ioTimeoutSec = 0,
    opts: { async?: boolean } = {}): Promise<void> {
    await call('add_lockspace', () => raw.sanlockAddLockspace(name, hostId, path, offset, ioTimeoutSec, opts.async ? AddLockspaceFlags.ASYNC : 0));
  }

  /**
   * Leaves the lockspace. Without `unused`, sanlock first kills (SIGKILL, or
   * SIGTERM if restricted) every process still holding a lease in it, this
   * one included; with `unused: true` it refuses with EBUSY instead.
   */
  async remLockspace(name: string, hostId: number, path: string, offset = 0,
    opts: { unused?: boolean; async?: boolean } = {}): Promise<void> {
    const flags = (opts.unused ? RemLockspaceFlags.UNUSED : 0) | (opts.async ? RemLockspaceFlags.ASYNC : 0);
    await call('rem_lockspace', () => raw.sanlockRemLockspace(name, hostId, path, offset, flags));
  }

  /** 'joined', 'absent', or 'changing' (being added or removed). */
  async inqLockspace(name: string, hostId: number, path: string, offset = 0): Promise<LockspaceStatus> {
    const rc = await call('inq_lockspace', () => raw.sanlockInqLockspace(name, hostId, path, offset));
    return rc === 0 ? 'joined' : rc === -E.ENOENT ? 'absent' : 'changing';
  }

  async getLockspaces(): Promise<LockspaceInfo[]> {
    const list = await call('get_lockspaces', () => raw.sanlockGetLockspaces());
    return list.map((l) => ({
      name: l.name, hostId: num(l.hostId), path: l.path, offset: num(l.offset),
      state: l.flags & LockspaceStateFlags.REM ? 'removing' : l.flags & LockspaceStateFlags.ADD ? 'adding' : 'joined',
    }));
  }

  /** Hosts of a joined lockspace as this daemon sees them (hostId 0: all seen). EAGAIN until it has watched them for a while. */
  async getHosts(lockspace: string, hostId = 0): Promise<HostInfo[]> {
    return (await call('get_hosts', () => raw.sanlockGetHosts(lockspace, hostId))).map(hostInfo);
  }

  // ----- resource leases on storage -----

  /** Reads a lease's leader record and owners from storage (through the daemon; no lockspace membership needed). */
  async readResourceOwners(lockspace: string, resourceName: string, path: string, offset = 0): Promise<ResourceOwners> {
    const r = await call('read_resource_owners', () => raw.sanlockReadResourceOwners(lockspace, resourceName, path, offset, 0));
    return { lver: num(r.lver), owners: r.owners.map(hostInfo), shared: (r.flags & ResourceFlags.SHARED) !== 0 };
  }

  /**
   * VDSM's getSpmStatus view of an SPM lease: the owner's host id and the
   * lease version, or -1 / -1 when nobody holds it (VDSM's SPM_ID_FREE and
   * LVER_INVALID).
   */
  async spmStatus(lease: LeaseRef): Promise<{ spmId: number; spmLver: number }> {
    const r = await this.readResourceOwners(lease.lockspace, lease.resource, lease.path, lease.offset);
    const owner = r.owners[0];
    if (r.owners.length !== 1 || owner === undefined) return { spmId: -1, spmLver: -1 };
    return { spmId: owner.hostId, spmLver: r.lver };
  }

  // ----- registration and leases -----

  /**
   * Registers this process with the daemon; returns the registration's fd
   * (close-on-exec). Leases acquired on it belong to this process until
   * released, unregister()ed, or the process exits.
   */
  async registerProcess(opts: RegisterOptions = {}): Promise<number> {
    const fd = await call('register', () => raw.sanlockRegister());
    try {
      if (opts.restrictSigkill) await call('restrict', () => raw.sanlockRestrict(fd, RestrictFlags.SIGKILL));
      if (opts.notifySignal) {
        const sig = opts.notifySignal.replace(/^SIG/, '');
        await call('killpath', () => raw.sanlockKillpath(fd, killBinary(), `-s ${sig}`, KillpathFlags.PID));
      } else if (opts.killpath) {
        const kp = opts.killpath;
        await call('killpath', () => raw.sanlockKillpath(fd, kp.path, kp.args ?? '', kp.appendPid ? KillpathFlags.PID : 0));
      }
    } catch (e) {
      await raw.sanlockUnregister(fd).catch(() => undefined);
      throw e;
    }
    return fd;
  }

  /** Closes the registration: the daemon releases (asynchronously) every lease held on it. */
  async unregister(fd: number): Promise<void> {
    await call('unregister', () => raw.sanlockUnregister(fd));
  }

  /**
   * Acquires an exclusive (or SHARED, via opts.resourceFlags) lease and
   * returns it with the lver this acquire got (1 for the first holder ever,
   * then +1 per acquire). Fails fast when held elsewhere (EEXIST: another
   * registration on this host; SANLK_ACQUIRE_IDLIVE / _OWNED...: another
   * host); `error.heldElsewhere` tells these apart from storage errors. If
   * the last owner's host died, sanlock waits for its delta lease to expire
   * first (can be minutes): this runs on its own thread.
   * opts.lver: fail (SANLK_ACQUIRE_LVER) unless the lease's current lver is that.
   */
  async acquire(fd: number, lockspace: string, resourceName: string, path: string, offset = 0, flags = 0,
    opts: { resourceFlags?: number; lver?: number } = {}): Promise<HeldLease> {
    return held(await call('acquire', () => raw.sanlockAcquire(fd, lockspace, resourceName, path, offset, flags,
      opts.resourceFlags ?? 0, opts.lver ?? null)));
  }

  /** Releases one lease held on the registration (rejects FAILED (-1) when it is not held there). */
  async release(fd: number, lockspace: string, resourceName: string, path: string, offset = 0, flags = 0): Promise<void> {
    await call('release', () => raw.sanlockRelease(fd, lockspace, resourceName, path, offset, flags));
  }

  /** Releases every lease held on the registration. */
  async releaseAll(fd: number): Promise<void> {
    await call('release', () => raw.sanlockRelease(fd, null, null, null, 0, ReleaseFlags.ALL));
  }

  /**
   * The leases held on the registration, with their lver. Rejects EBUSY while
   * another call (acquire, release) on the same registration is in progress,
   * and EBADF for an fd that is not a registration of this process.
   */
  async inquire(fd: number): Promise<HeldLease[]> {
    return (await call('inquire', () => raw.sanlockInquire(fd))).map(held);
  }

  /**
   * Watches a held lease: polls inquire (and optionally inqLockspace) every
   * intervalMs and listens for the registration's notifySignal. `lost`
   * resolves on the first loss seen; the caller must then stop using the
   * lease's protection (and releaseAll, so sanlock stops escalating).
   */
  watchLease(fd: number, lease: LeaseRef, opts: WatchOptions = {}): LeaseWatch {
    return new LeaseWatch(this, fd, lease, opts);
  }
}
