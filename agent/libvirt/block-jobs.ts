// Block jobs on a running domain's disk: blockCommit (live merge), its
// progress, and its end (abort, or pivot to the base for an active commit).
// Calls go through the domain's connection, with its timeout.
import { native, type DomHandle, type Int64 } from './native.js';
import type { Domain } from './domain.js';
import { DomainBlockCommitFlags, DomainBlockJobAbortFlags, type DomainBlockJobType } from './generated/enums.js';

export interface BlockJobInfo { type: DomainBlockJobType; bandwidth: Int64; cur: Int64; end: Int64 }

export interface BlockJobBinding {
  domainBlockCommit(d: DomHandle, disk: string, base: string | null, top: string | null, bandwidth: Int64, flags: number): Promise<void>;
  domainGetBlockJobInfo(d: DomHandle, disk: string, flags: number): Promise<BlockJobInfo | null>;
  domainBlockJobAbort(d: DomHandle, disk: string, flags: number): Promise<void>;
}

export interface CommitOptions {
  /** The base to commit into (a path or "vda[N]"); null: top's backing file. */
  base: string | null;
  /** The layer to commit; null: the active layer. */
  top: string | null;
  /** MiB/s; 0 unlimited. */
  bandwidthMiBs?: number;
  /** Top is the active layer: the job mirrors until pivoted. */
  active: boolean;
}

/** Starts a commit; names stay relative in the overlay's backing file (our volumes are named by UUID in one folder). */
export function blockCommit(dom: Domain, disk: string, o: CommitOptions): Promise<void> {
  const flags = DomainBlockCommitFlags.RELATIVE | (o.active ? DomainBlockCommitFlags.ACTIVE : 0);
  return dom.conn.run('domainBlockCommit', () => native.domainBlockCommit(dom.h(), disk, o.base, o.top, o.bandwidthMiBs ?? 0, flags));
}

/** The disk's block job, or null when it has none. */
export function blockJobInfo(dom: Domain, disk: string): Promise<BlockJobInfo | null> {
  return dom.conn.run('domainGetBlockJobInfo', () => native.domainGetBlockJobInfo(dom.h(), disk, 0));
}

/** Ends the disk's job; with pivot, switches the disk to the commit's base (waits for QEMU to do it). */
export function blockJobAbort(dom: Domain, disk: string, o: { pivot: boolean; timeoutMs?: number }): Promise<void> {
  const flags = o.pivot ? DomainBlockJobAbortFlags.PIVOT : 0;
  return dom.conn.run('domainBlockJobAbort', () => native.domainBlockJobAbort(dom.h(), disk, flags), o.timeoutMs);
}
