// The sanlock part of the addon (native/src/sanlock.cc, sanlock_lockspace.cc):
// its raw shape, the facade entry that agent/storage/sanlock.ts builds its
// sanlock client on. Every call runs off the JS thread; a failure rejects with
// a CapturedError whose `domain` is SANLOCK_ERROR_DOMAIN and `code` sanlock's rc.
import { constants as osConstants } from 'node:os';
import { native, type Int64 } from './native.js';

/** CapturedError.domain the addon uses for sanlock failures. */
export const SANLOCK_ERROR_DOMAIN = -2;

export interface RawSanlockHost { hostId: Int64; generation: Int64; timestamp: Int64; ioTimeout: number; flags: number }
export interface RawSanlockHeld { lockspace: string; resource: string; path: string; offset: Int64; lver: Int64; flags: number }
export interface RawSanlockLockspace { name: string; hostId: Int64; path: string; offset: Int64; flags: number }

export interface SanlockBinding {
  sanlockStrerror(rc: number): string;
  sanlockDirectInitLockspace(name: string, path: string, offset: Int64, flags: number, ioTimeoutSec: number): Promise<void>;
  sanlockDirectInitResource(lockspace: string, name: string, path: string, offset: Int64, flags: number,
    numHosts: number, clear: boolean): Promise<void>;
  sanlockVersion(): Promise<{ version: number; proto: number }>;
  sanlockAddLockspace(name: string, hostId: Int64, path: string, offset: Int64, ioTimeoutSec: number,
    flags: number): Promise<void>;
  sanlockRemLockspace(name: string, hostId: Int64, path: string, offset: Int64, flags: number): Promise<void>;
  /** 0 joined, -ENOENT absent, -EINPROGRESS being added/removed. */
  sanlockInqLockspace(name: string, hostId: Int64, path: string, offset: Int64): Promise<number>;
  sanlockGetLockspaces(): Promise<RawSanlockLockspace[]>;
  sanlockGetHosts(name: string, hostId: Int64): Promise<RawSanlockHost[]>;
  sanlockReadResourceOwners(lockspace: string, name: string, path: string, offset: Int64,
    flags: number): Promise<{ lver: Int64; flags: number; owners: RawSanlockHost[] }>;
  sanlockRegister(): Promise<number>;
  sanlockUnregister(fd: number): Promise<void>;
  sanlockRestrict(fd: number, flags: number): Promise<void>;
  sanlockKillpath(fd: number, path: string, args: string, flags: number): Promise<void>;
  sanlockAcquire(fd: number, lockspace: string, name: string, path: string, offset: Int64, flags: number,
    resFlags: number, lver: Int64 | null): Promise<RawSanlockHeld>;
  sanlockRelease(fd: number, lockspace: string | null, name: string | null, path: string | null, offset: Int64,
    flags: number): Promise<void>;
  sanlockInquire(fd: number): Promise<RawSanlockHeld[]>;
}

export const sanlockBinding: SanlockBinding = native;

// ---------- sanlock's constants (sanlock.h, sanlock_admin.h, sanlock_resource.h, sanlock_rv.h) ----------

/** sanlock_acquire flags. */
export const AcquireFlags = { LVB: 0x1, ORPHAN: 0x2, ORPHAN_ONLY: 0x4, OWNER_NOWAIT: 0x8 } as const;
/** sanlk_resource flags. */
export const ResourceFlags = { LVER: 0x1, NUM_HOSTS: 0x2, SHARED: 0x4, PERSISTENT: 0x8 } as const;
/** sanlock_release flags. */
export const ReleaseFlags = { ALL: 0x1, RENAME: 0x2, ORPHAN: 0x4 } as const;
/** sanlock_restrict flags. */
export const RestrictFlags = { ALL: 0x1, SIGKILL: 0x2, SIGTERM: 0x4 } as const;
/** sanlock_killpath flags: PID appends the holder's pid to the args. */
export const KillpathFlags = { PID: 0x1 } as const;
/** sanlock_add_lockspace / sanlock_rem_lockspace flags. */
export const AddLockspaceFlags = { ASYNC: 0x1 } as const;
export const RemLockspaceFlags = { ASYNC: 0x1, UNUSED: 0x2 } as const;
/** sanlk_lockspace.flags reported by getLockspaces(). */
export const LockspaceStateFlags = { ADD: 0x1, REM: 0x2 } as const;
/** sanlk_host.flags & 0xf from getHosts(). */
export const HostState = { UNKNOWN: 1, FREE: 2, LIVE: 3, FAIL: 4, DEAD: 5 } as const;

/** sanlock's own return codes (sanlock_rv.h). */
export const SanlockRc = {
  SANLK_ERROR: -201, SANLK_AIO_TIMEOUT: -202, SANLK_WD_ERROR: -203,
  SANLK_DBLOCK_READ: -210, SANLK_DBLOCK_WRITE: -211, SANLK_DBLOCK_LVER: -212, SANLK_DBLOCK_MBAL: -213,
  SANLK_DBLOCK_CHECKSUM: -214,
  SANLK_LEADER_READ: -220, SANLK_LEADER_WRITE: -221, SANLK_LEADER_DIFF: -222, SANLK_LEADER_MAGIC: -223,
  SANLK_LEADER_VERSION: -224, SANLK_LEADER_SECTORSIZE: -225, SANLK_LEADER_LOCKSPACE: -226,
  SANLK_LEADER_RESOURCE: -227, SANLK_LEADER_NUMHOSTS: -228, SANLK_LEADER_CHECKSUM: -229,
  SANLK_ADDLS_SIZES: -230, SANLK_ADDLS_INVALID_HOSTID: -231,
  SANLK_ACQUIRE_LVER: -240, SANLK_ACQUIRE_LOCKSPACE: -241, SANLK_ACQUIRE_IDDISK: -242, SANLK_ACQUIRE_IDLIVE: -243,
  SANLK_ACQUIRE_OWNED: -244, SANLK_ACQUIRE_OTHER: -245, SANLK_ACQUIRE_SHRETRY: -246,
  SANLK_ACQUIRE_OWNED_RETRY: -247,
  SANLK_RELEASE_LVER: -250, SANLK_RELEASE_OWNER: -251,
  SANLK_RENEW_OWNER: -260, SANLK_RENEW_DIFF: -261, SANLK_HOSTID_BUSY: -262,
  SANLK_REQUEST_MAGIC: -270, SANLK_REQUEST_VERSION: -271, SANLK_REQUEST_OLD: -272, SANLK_REQUEST_LVER: -273,
  SANLK_RINDEX_MAGIC: -274, SANLK_RINDEX_VERSION: -275, SANLK_RINDEX_LOCKSPACE: -276, SANLK_RINDEX_OFFSET: -277,
  SANLK_RINDEX_DIFF: -278,
} as const;

const RC_NAMES = new Map<number, string>();
for (const [name, rc] of Object.entries(SanlockRc)) RC_NAMES.set(rc, name);
for (const [name, errno] of Object.entries(osConstants.errno)) {
  if (!RC_NAMES.has(-errno)) RC_NAMES.set(-errno, name);
}
// libsanlock returns a bare -1 for a short reply from the daemon and the
// daemon answers -1 to a release of a resource the registration does not hold.
RC_NAMES.set(-1, 'FAILED');

/** Symbolic name of a sanlock return code: EEXIST, SANLK_ACQUIRE_IDLIVE, FAILED (-1), ... */
export function sanlockRcName(rc: number): string {
  return RC_NAMES.get(rc) ?? `RC${rc}`;
}
