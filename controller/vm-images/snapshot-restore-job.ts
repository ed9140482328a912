// The vm.snapshot.restore job (POST /vms/{id}/snapshots/{sid}/restore), for a stopped VM: per
// disk the volumes above the snapshot's volume are deleted (leaf first, SPM tasks), and a new
// leaf is made on the snapshot's volume (so the snapshot stays as it is and can be restored
// again); the snapshots newer than it go with their volumes. With a memory snapshot, the next
// start resumes the VM's RAM state from the snapshot's memory volume (VM.create restoreState),
// recorded as a hibernation the snapshot owns. The records change only at the end, so a resumed
// run plans the same deletions; the new leaves' ids are remembered before they are made.
import { randomUUID } from 'node:crypto';
import type { JobHandler } from '../jobs/executor.js';
import { JobFailure } from '../jobs/job-failure.js';
import { listEveryHost, sightings } from '../vms/find-vm.js';
import { jobVm } from '../vms/vm-job-deps.js';
import { createPoolVolume, deletePoolImage, deletePoolVolume } from './pool-volumes.js';
import { restorePlan, SnapshotChainError } from './snapshot-chain.js';
import { volumeHomeOf, type VmImageDeps } from './vm-image-deps.js';

export function snapshotRestoreJob(d: VmImageDeps): JobHandler {
  return async (ctx) => {
    const { store } = d.vms;
    const vm = await jobVm(d.vms, ctx);
    const sid = ctx.job.params['snapshotId'] as string;
    const snap = await store.snapshots.get(sid);
    const lists = await ctx.step('look for the VM on every host', () => listEveryHost(d.vms.links, d.vms.monitor, d.vms.settings, ctx.correlationId));
    const seen = sightings(lists, vm.id).filter((x) => x.status !== 'Down');
    if (seen.length > 0) throw new JobFailure('VmNotStopped', `VM ${vm.name} runs on ${seen.map((x) => `${x.hostId} (${x.status})`).join(', ')}: a snapshot is restored on a stopped VM`, {});
    if (vm.hostId !== null && vm.hostId in lists.unanswered) throw new JobFailure('HostUnreachable', `host ${vm.hostId} did not answer: whether the VM runs there is not known`, { hostId: vm.hostId });
    const hib = await store.hibernations.find(vm.id);
    if (hib && hib.snapshotId === null) throw new JobFailure('VmSuspended', `VM ${vm.name} is suspended: its saved RAM state would not match the restored disks; start it first`, {});
    const home = await volumeHomeOf(store, vm);

    const all = await store.snapshots.list(vm.id);
    const plan = await ctx.step('plan the restore', async () => {
      const leaves = new Map<string, string>();
      for (const x of snap.disks) leaves.set(x.diskId, (await store.disks.get(x.diskId)).volumeId);
      try {
        return restorePlan(snap, all, leaves);
      } catch (e) {
        if (e instanceof SnapshotChainError) throw new JobFailure('ChainMismatch', e.message, e.details, { cause: e });
        throw e;
      }
    });
    await store.snapshots.update(sid, { status: 'restoring' });
    const newLeaves = ctx.memo<Record<string, string>>('newLeaves') ?? Object.fromEntries(plan.disks.map((x) => [x.diskId, randomUUID()]));
    await ctx.remember('newLeaves', newLeaves);
    for (const [i, p] of plan.disks.entries()) {
      const disk = await store.disks.get(p.diskId);
      const domain = await store.storageDomains.get(p.domainId);
      for (const v of p.remove) {
        await ctx.step(`delete volume ${v} of disk ${disk.name}`, () => deletePoolVolume(d.storage, ctx, { clusterId: domain.clusterId, domainId: p.domainId, imageId: p.imageId, volumeId: v }, `restoreDelete:${v}`));
      }
      await ctx.step(`create the new leaf of disk ${disk.name}`, () => createPoolVolume(d.storage, ctx, {
        clusterId: domain.clusterId, domainId: p.domainId, imageId: p.imageId, volumeId: newLeaves[p.diskId]!, srcVolUUID: p.onto,
        sizeBytes: disk.sizeBytes, format: 'COW', preallocate: 'SPARSE', description: `restored to snapshot ${snap.description}`,
      }, `restoreLeaf:${p.diskId}`));
      await ctx.progress(Math.round(((i + 1) / plan.disks.length) * 80));
    }
    for (const id of plan.newer) {
      const t = all.find((x) => x.id === id)!;
      if (t.memoryVolume) await ctx.step('delete a newer snapshot\'s memory volume', () => deletePoolImage(d.storage, ctx, { clusterId: home.clusterId, ...t.memoryVolume! }, `newerMemory:${id}`));
      await store.snapshots.delete(id);
    }
    for (const p of plan.disks) {
      await store.disks.setVolume(p.diskId, newLeaves[p.diskId]!);
      await store.snapshots.setDiskVolumes(sid, p.diskId, { childId: newLeaves[p.diskId]! });
    }
    if (hib) await store.hibernations.delete(vm.id); // a RAM state restored from another snapshot no longer matches
    if (snap.memoryVolume) await store.hibernations.begin(vm.id, ctx.job.id, snap.memoryVolume, null, { state: 'suspended', snapshotId: snap.id });
    await store.snapshots.update(sid, { status: 'ready' });
    await store.event({ kind: 'vm.snapshot-restored', subjectKind: 'vm', subjectId: vm.id, correlationId: ctx.correlationId,
      message: `VM ${vm.name}: disks returned to snapshot "${snap.description}"${snap.memoryVolume ? '; the next start resumes its RAM state' : ''}${plan.newer.length ? `; ${plan.newer.length} newer snapshot(s) deleted` : ''}`,
      details: { snapshotId: sid, newer: plan.newer } });
    await ctx.progress(100);
  };
}
