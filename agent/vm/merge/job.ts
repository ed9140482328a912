// A live merge job as the agent keeps it: in the VM's metadata (one <job>
// element of flat attributes), so that a restarted agent reconciles it with
// libvirt's block job instead of guessing.
import type { MergeJobT } from '../../../api/schema.js';

/**
 * extend: the base is being extended (nothing asked of libvirt yet);
 * commit: blockCommit was asked for (libvirt's job may run);
 * pivot: an active commit's top is ILLEGAL, the pivot asked for;
 * cleanup: the top is out of the chain in libvirt's view, the metadata follows;
 * done / failed: ended.
 */
export type MergePhase = 'extend' | 'commit' | 'pivot' | 'cleanup' | 'done' | 'failed';

export interface MergeJob {
  id: string;
  domainID: string;
  imageID: string;
  /** The drive's leaf when the merge was asked for. */
  leafVolUUID: string;
  baseVolUUID: string;
  topVolUUID: string;
  /** The disk's target (vda). */
  target: string;
  /** Top is the leaf: an active commit with a pivot. */
  active: boolean;
  bandwidth: number;
  phase: MergePhase;
  /** An active commit that caught up (libvirt's READY). */
  ready: boolean;
  progress: number;
  startedAt: number;
  endedAt?: number;
  measuredBytes?: number;
  extendedToMiB?: number;
  removedVolUUID?: string;
  error?: { code: number; message: string };
}

export const ENDED: ReadonlySet<MergePhase> = new Set(['done', 'failed']);

export function isRunning(j: MergeJob): boolean {
  return !ENDED.has(j.phase);
}

/** The job as VM.getJobs shows it. */
export function publicJob(j: MergeJob): MergeJobT {
  const state: MergeJobT['state'] = j.phase === 'extend' ? 'running'
    : j.phase === 'commit' ? (j.ready ? 'ready' : 'running')
      : j.phase === 'pivot' ? 'pivoting' : j.phase;
  return {
    id: j.id, type: 'merge', drive: { domainID: j.domainID, imageID: j.imageID }, baseVolUUID: j.baseVolUUID, topVolUUID: j.topVolUUID,
    state, progress: j.progress,
    ...(j.removedVolUUID ? { removedVolUUID: j.removedVolUUID } : {}),
    ...(j.measuredBytes !== undefined ? { measuredBytes: j.measuredBytes } : {}),
    ...(j.extendedToMiB !== undefined ? { extendedToMiB: j.extendedToMiB } : {}),
    ...(j.error ? { error: j.error } : {}),
  };
}

export function jobToAttrs(j: MergeJob): Record<string, string> {
  const a: Record<string, string> = {
    type: 'merge', id: j.id, domainID: j.domainID, imageID: j.imageID, leafVolUUID: j.leafVolUUID, baseVolUUID: j.baseVolUUID,
    topVolUUID: j.topVolUUID, target: j.target, active: String(j.active), bandwidth: String(j.bandwidth), phase: j.phase,
    ready: String(j.ready), progress: String(j.progress), startedAt: String(j.startedAt),
  };
  if (j.endedAt !== undefined) a.endedAt = String(j.endedAt);
  if (j.measuredBytes !== undefined) a.measuredBytes = String(j.measuredBytes);
  if (j.extendedToMiB !== undefined) a.extendedToMiB = String(j.extendedToMiB);
  if (j.removedVolUUID) a.removedVolUUID = j.removedVolUUID;
  if (j.error) { a.errorCode = String(j.error.code); a.errorMessage = j.error.message; }
  return a;
}

const PHASES: readonly MergePhase[] = ['extend', 'commit', 'pivot', 'cleanup', 'done', 'failed'];

/** A merge job from its attributes; undefined for another kind of job or a record we cannot read. */
export function jobFromAttrs(a: Record<string, string>): MergeJob | undefined {
  if (a.type !== 'merge') return undefined;
  const need = ['id', 'domainID', 'imageID', 'leafVolUUID', 'baseVolUUID', 'topVolUUID', 'target', 'phase'] as const;
  if (need.some((k) => !a[k]) || !PHASES.includes(a.phase as MergePhase)) return undefined;
  const num = (k: string): number | undefined => (a[k] !== undefined && Number.isFinite(Number(a[k])) ? Number(a[k]) : undefined);
  const j: MergeJob = {
    id: a.id!, domainID: a.domainID!, imageID: a.imageID!, leafVolUUID: a.leafVolUUID!, baseVolUUID: a.baseVolUUID!, topVolUUID: a.topVolUUID!,
    target: a.target!, active: a.active === 'true', bandwidth: num('bandwidth') ?? 0, phase: a.phase as MergePhase, ready: a.ready === 'true',
    progress: num('progress') ?? 0, startedAt: num('startedAt') ?? 0,
  };
  const endedAt = num('endedAt'), measured = num('measuredBytes'), extended = num('extendedToMiB');
  if (endedAt !== undefined) j.endedAt = endedAt;
  if (measured !== undefined) j.measuredBytes = measured;
  if (extended !== undefined) j.extendedToMiB = extended;
  if (a.removedVolUUID) j.removedVolUUID = a.removedVolUUID;
  if (a.errorCode !== undefined) j.error = { code: num('errorCode') ?? 52, message: a.errorMessage ?? '' };
  return j;
}
