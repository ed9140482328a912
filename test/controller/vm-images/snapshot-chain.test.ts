// The volume chain decisions of snapshots (controller/vm-images/snapshot-chain.ts): what a live
// merge commits and renames, and what a restore deletes, leaf first.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import type { VmSnapshot } from '../../../controller/model/snapshots.js';
import { chainAbove, mergePlan, restorePlan, SnapshotChainError } from '../../../controller/vm-images/snapshot-chain.js';

const DISK = randomUUID();
const SD = randomUUID();
const IMG = randomUUID();
const [V0, V1, V2, V3] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];

function snap(volumeId: string, childId: string, diskId = DISK): VmSnapshot {
  return {
    id: randomUUID(), vmId: randomUUID(), description: 'x', status: 'ready', memory: false, memoryVolume: null, vmRunning: true, frozen: true,
    warnings: [], jobId: null, createdAt: 0, updatedAt: 0, disks: [{ diskId, domainId: SD, imageId: IMG, volumeId, childId }],
  };
}

// The disk V0 <- V1 <- V2 <- V3 (leaf): S1 kept V0 (made V1), S2 kept V1 (made V2), S3 kept V2 (made V3).
const S1 = snap(V0, V1);
const S2 = snap(V1, V2);
const S3 = snap(V2, V3);
const all = [S1, S2, S3];
const leaves = new Map([[DISK, V3]]);

t.test('deleting the newest snapshot is an active commit of the leaf into its volume, pivoted: the disk\'s leaf is then that volume', async (t) => {
  const [m] = mergePlan(S3, all, leaves);
  t.same(m, { diskId: DISK, domainId: SD, imageId: IMG, base: V2, top: V3, leaf: V3, active: true, leafAfter: V2, renamed: [] });
});

t.test('deleting an older snapshot is an internal commit; the snapshot that kept the top keeps the base from then on', async (t) => {
  const [m] = mergePlan(S1, all, leaves);
  t.same([m!.base, m!.top, m!.leaf, m!.active, m!.leafAfter], [V0, V1, V3, false, V3], 'V1 into V0; the drive stays on V3');
  t.same(m!.renamed, [S2.id], 'S2 kept V1: it keeps V0 now, which holds what V1 held');
});

t.test('a restore deletes every volume above the snapshot\'s, leaf first, and the snapshots those volumes kept', async (t) => {
  const p = restorePlan(S1, all, leaves);
  t.same(p.disks, [{ diskId: DISK, domainId: SD, imageId: IMG, onto: V0, remove: [V3, V2, V1] }], 'V3, V2, V1 deleted; the new leaf goes on V0');
  t.same(p.newer.sort(), [S2.id, S3.id].sort(), 'S2 and S3 go');
  const last = restorePlan(S3, all, leaves);
  t.same([last.disks[0]!.remove, last.newer], [[V3], []], 'to the newest: only the leaf written since');
});

t.test('after a restore the snapshot\'s child is the new leaf: restoring again deletes only that', async (t) => {
  const N = randomUUID();
  const s1 = { ...S1, disks: [{ ...S1.disks[0]!, childId: N }] };
  t.same(restorePlan(s1, [s1], new Map([[DISK, N]])).disks[0]!.remove, [N]);
});

t.test('records out of step with the disk (its leaf not above the snapshot) are a SnapshotChainError, never a guess', async (t) => {
  t.throws(() => chainAbove(S1, [S1, S3], DISK, V3), SnapshotChainError, 'no record keeps V1: the chain from V0 does not reach V3');
  t.throws(() => mergePlan(S1, all, new Map()), SnapshotChainError, 'a disk no longer the VM\'s');
  const other = snap(V0, V1, randomUUID());
  t.throws(() => restorePlan(other, all, leaves), SnapshotChainError);
});
