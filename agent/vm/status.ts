// VM statuses (VDSM's names) and exit reasons.
import type { Static } from '@sinclair/typebox';
import { ExitReason, type PauseCode, type VmStatus } from '../../api/types.js';

export type VmStatusT = Static<typeof VmStatus>;
export type PauseCodeT = Static<typeof PauseCode>;

export { ExitReason };

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
