// VM statuses (VDSM's names) and exit reasons.
import type { Static } from '@sinclair/typebox';
import type { PauseCode, VmStatus } from '../api/types.js';

export type VmStatusT = Static<typeof VmStatus>;
export type PauseCodeT = Static<typeof PauseCode>;

/** Why a VM went Down. Our own stable numbers (documented in docs/api.md). */
export enum ExitReason {
  SUCCEEDED = 0,
  GENERIC_ERROR = 1,
  LIBVIRT_START_FAILED = 2,
  HOOK_ERROR = 3,
  ADMIN_SHUTDOWN = 4,
  USER_SHUTDOWN = 5,
  DESTROYED = 6,
  CRASHED = 7,
  DOMAIN_MISSING = 8,
}

export interface ExitInfo {
  exitCode: 0 | 1;
  exitReason: ExitReason;
  exitMessage: string;
}

/** pauseCode for an io-error-reason event's reason string. */
export function pauseCodeFor(reason: string): PauseCodeT {
  if (reason === 'enospc') return 'ENOSPC';
  if (reason === 'eio' || reason === 'eperm' || reason === '') return 'EIO';
  return 'EOTHER';
}
