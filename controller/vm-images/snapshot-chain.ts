// The volume chain decisions of snapshots, pure: what a live merge of a snapshot commits and what
// it renames, and what a restore deletes. A snapshot keeps, per disk, `volumeId` (the leaf when
// it was taken: the disk as it was) and `childId` (the volume on top of it). The chain of a disk
// is read from its snapshots: each volume's child is the childId of the snapshot that keeps it.
import type { SnapshotDisk, VmSnapshot } from '../model/snapshots.js';

/** The snapshots and the disks' leaves do not make one chain per disk (a record is out of step with storage). */
export class SnapshotChainError extends Error {
  override readonly name = 'SnapshotChainError';
  readonly code = 1301;
  constructor(message: string, readonly details: Record<string, unknown> = {}) { super(message); }
}

export interface MergeStep {
  diskId: string;
  domainId: string;
  imageId: string;
  /** the snapshot's volume: what the top is committed into */
  base: string;
  /** the volume on top of it: out of the chain after the merge, then deleted */
  top: string;
  /** the drive's current leaf (VM.merge's drive.volumeID) */
  leaf: string;
  /** the top is the leaf: an active commit, pivoted to the base */
  active: boolean;
  /** the disk's leaf after the merge */
  leafAfter: string;
  /** other snapshots whose volume was the top: theirs is the base from then on (it now holds what the top held) */
  renamed: string[];
}

function diskOf(s: VmSnapshot, diskId: string): SnapshotDisk {
  const d = s.disks.find((x) => x.diskId === diskId);
  if (!d) throw new SnapshotChainError(`snapshot ${s.id} has no volume of disk ${diskId}`, { snapshotId: s.id, diskId });
  return d;
}

/** The live merge that deletes snapshot `s`, per disk; `leaves` is each disk's current leaf (the store's disk volume). */
export function mergePlan(s: VmSnapshot, all: readonly VmSnapshot[], leaves: ReadonlyMap<string, string>): MergeStep[] {
  return s.disks.map((d) => {
    const leaf = leaves.get(d.diskId);
    if (leaf === undefined) throw new SnapshotChainError(`disk ${d.diskId} of snapshot ${s.id} is no longer the VM's`, { diskId: d.diskId });
    chainAbove(s, all, d.diskId, leaf); // the top must be in the disk's chain below its leaf
    const active = d.childId === leaf;
    const renamed = all.filter((t) => t.id !== s.id && t.disks.some((x) => x.diskId === d.diskId && x.volumeId === d.childId)).map((t) => t.id);
    return { diskId: d.diskId, domainId: d.domainId, imageId: d.imageId, base: d.volumeId, top: d.childId, leaf, active, leafAfter: active ? d.volumeId : leaf, renamed };
  });
}

/**
 * The volumes above the snapshot's volume of one disk, from its child up to the disk's leaf:
 * what a restore deletes (leaf first: a volume with children is not deleted).
 */
export function chainAbove(s: VmSnapshot, all: readonly VmSnapshot[], diskId: string, leaf: string): string[] {
  const out: string[] = [];
  let v = diskOf(s, diskId).childId;
  for (let i = 0; i <= all.length; i++) {
    out.push(v);
    if (v === leaf) return out;
    const keeper = all.find((t) => t.disks.some((x) => x.diskId === diskId && x.volumeId === v));
    if (!keeper) break;
    v = diskOf(keeper, diskId).childId;
  }
  throw new SnapshotChainError(`the leaf ${leaf} of disk ${diskId} is not above snapshot ${s.id}'s volume in the recorded chain`, { snapshotId: s.id, diskId, leaf, walked: out });
}

export interface RestorePlan {
  /** per disk: the volumes to delete, leaf first, and the snapshot's volume the new leaf goes on */
  disks: Array<{ diskId: string; domainId: string; imageId: string; onto: string; remove: string[] }>;
  /** the snapshots newer than `s`: their volumes are deleted, so they go too */
  newer: string[];
}

export function restorePlan(s: VmSnapshot, all: readonly VmSnapshot[], leaves: ReadonlyMap<string, string>): RestorePlan {
  const removed = new Set<string>();
  const disks = s.disks.map((d) => {
    const leaf = leaves.get(d.diskId);
    if (leaf === undefined) throw new SnapshotChainError(`disk ${d.diskId} of snapshot ${s.id} is no longer the VM's`, { diskId: d.diskId });
    const above = chainAbove(s, all, d.diskId, leaf);
    for (const v of above) removed.add(v);
    return { diskId: d.diskId, domainId: d.domainId, imageId: d.imageId, onto: d.volumeId, remove: above.reverse() };
  });
  const newer = all.filter((t) => t.id !== s.id && t.disks.some((x) => removed.has(x.volumeId))).map((t) => t.id);
  return { disks, newer };
}
