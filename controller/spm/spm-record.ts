// What the controller knows about the pool's SPM, and what it observes of each host. The
// sanlock lease is the authority on who is SPM: the record only follows it (a successful
// spmStart, or a host reporting the lease), so it can be rebuilt from the hosts after a loss.

import type { HostStatus } from '../health/host-status.js';

/** A host's answer to StoragePool.getSpmStatus, read from the lease itself. */
export interface SpmLeaseReport {
  /** this host's own role: SPM, Contend (its spmStart runs) or Free */
  role: 'SPM' | 'Contend' | 'Free';
  /** pool host id (1..250) holding the lease, -1 when nobody does */
  holder: number;
  /** the holder's lease version; -1 when nobody holds it (the agent's LVER_INVALID) */
  lver: number;
  /** when the getSpmStatus call was SENT (ms since the epoch): a read begun before an SPM was recorded says nothing against it */
  at: number;
}

export interface SpmHostView {
  hostId: string;
  status: HostStatus;
  /** -1..10; -1 = never SPM */
  spmPriority: number;
  /** the host's id in the pool's lockspace (1..250); null before it was given one */
  poolHostNo: number | null;
  poolConnected: boolean;
  lease?: SpmLeaseReport;
}

export interface SpmInFlight {
  op: 'start' | 'stop';
  hostId: string;
  since: number;
}

/** Persisted (before the call is made, so a restarted controller knows what may be running). */
export interface SpmRecord {
  /** the last host known to hold the SPM lease; kept while it is lost, until another takes the lease */
  spmHostId: string | null;
  /** the lease version it holds; -1 before any SPM */
  lver: number;
  /** when spmHostId/lver were last set (elected, adopted or forgotten) */
  since: number;
  inFlight: SpmInFlight | null;
  /** host -> when its last spmStart/spmStop failed: it is tried again after spmRetryIntervalMs */
  failedAt: Readonly<Record<string, number>>;
}

export const NO_SPM: SpmRecord = Object.freeze({ spmHostId: null, lver: -1, since: 0, inFlight: null, failedAt: Object.freeze({}) });

/** A source of numbers in [0, 1): injected so that tie breaks are reproducible in tests. */
export type RandomSource = () => number;
