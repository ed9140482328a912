// The sanlock part of the addon (native/src/sanlock.cc, sanlock_lockspace.cc):
// its raw shape, the facade entry that agent/storage/sanlock.ts builds its
// sanlock client on. Every call runs off the JS thread; a failure rejects with
// a CapturedError whose `domain` is SANLOCK_ERROR_DOMAIN and `code` sanlock's rc.
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
