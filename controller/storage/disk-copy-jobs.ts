// disk.copy and disk.move (issue 13): a disk copied or moved to another storage domain of its
// pool (file <-> block) by the SPM, as tasks runSpmTask follows across controller restarts and
// SPM failovers.
//   disk.copy  Volume.copy (volType LEAF): the source disk's chain collapsed into the new disk's
//              one volume (the record, pending, made by the route); the job's progress is the
//              task's (qemu-img convert -p).
//   disk.move  Image.move: the image, collapsed, with the same image and leaf ids on the target
//              domain, then the source deleted; the record then points at the target domain.
// Both are cancellable: a cancel sends Task.stop, the agent kills qemu-img and removes the copy,
// and the job fails with code 'Cancelled' (a cancelled copy's record is removed; a cancelled
// move's disk stays where it was). A move the agent refuses because a VM runs on the disk (203)
// fails with code 'DiskInUse'.
import type { JobContext } from '../jobs/executor.js';
import { JobFailure } from '../jobs/job-failure.js';
import type { Disk } from '../model/storage.js';
import { ERRORS } from '../../api/errors.js';
import { agentCode } from './agent-answer.js';
import { runSpmTask } from './spm-task.js';
import type { StorageDeps } from './storage-deps.js';
import { copyVolume, isLegal } from '../templates/volume-tasks.js';
import { DiskInUseError, runningUser } from './disk-use.js';

/** bandwidthMiBs: the copy's rate limit in MiB/s (Volume.copy / Image.move bandwidth); absent: no limit. */
export interface DiskCopyParams { sourceDiskId: string; storageDomainId: string; bandwidthMiBs?: number }
export interface DiskMoveParams { fromDomainId: string; storageDomainId: string; bandwidthMiBs?: number }

const isCancel = (e: unknown): boolean => e instanceof JobFailure && e.code === 'Cancelled';

async function clusterOf(deps: StorageDeps, domainId: string): Promise<string> {
  return (await deps.store.storageDomains.get(domainId)).clusterId;
}

/** The task's progress as the job's, never going back (a resent task starts again at 0). */
function progressFollower(ctx: JobContext): (pc: number) => Promise<void> {
  let last = -1;
  return async (pc) => {
    const p = Math.min(Math.max(Math.floor(pc), 0), 99); // 100 once the record says so
    if (p > last) { last = p; await ctx.progress(p); }
  };
}

export function diskCopyJob(deps: StorageDeps) {
  return async (ctx: JobContext): Promise<void> => {
    const { store } = deps;
    const p = ctx.job.params as unknown as DiskCopyParams;
    const copy = await store.disks.find(ctx.job.targetId);
    if (copy === undefined) return; // an earlier run was cancelled and removed it
    if (copy.status === 'ready') return; // an earlier run got to the end
    if (copy.status !== 'pending') throw new JobFailure('Conflict', `disk ${copy.name} is ${copy.status}: not copied`, { status: copy.status });
    const src = await store.disks.find(p.sourceDiskId);
    if (src === undefined) {
      await store.disks.setStatus(copy.id, 'failed');
      throw new JobFailure('SourceDiskGone', `the source disk ${p.sourceDiskId} no longer exists`, { sourceDiskId: p.sourceDiskId });
    }
    const user = await runningUser(store, src);
    if (user && ctx.memo('copyTask') === undefined) {
      await store.disks.delete(copy.id);
      const e = new DiskInUseError(src, user, 'copied');
      throw new JobFailure('DiskInUse', e.message, e.details);
    }
    const preallocated = src.provisioning === 'preallocated';
    try {
      await copyVolume(deps, ctx, {
        clusterId: await clusterOf(deps, src.storageDomainId),
        src: { storageDomainId: src.storageDomainId, imageId: src.imageId, volumeId: src.volumeId },
        dst: { storageDomainId: copy.storageDomainId, imageId: copy.imageId, volumeId: copy.volumeId },
        volType: 'LEAF', memoKey: 'copyTask', description: `copy of disk ${src.name}`,
        format: preallocated ? { volFormat: 'RAW', preallocate: 'PREALLOCATED' } : { volFormat: 'COW', preallocate: 'SPARSE' },
        onProgress: progressFollower(ctx), stop: ctx.cancelSignal, ...(p.bandwidthMiBs !== undefined && { bandwidthMiBs: p.bandwidthMiBs }),
      });
    } catch (e) {
      if (isCancel(e)) {
        // The agent removed the half copy (its task's undo step): the record goes too.
        await store.disks.delete(copy.id);
        await store.event({ kind: 'disk.copy-cancelled', subjectKind: 'disk', subjectId: copy.id, correlationId: ctx.correlationId,
          message: `copy of disk ${src.name} cancelled: the half copy was removed`, details: { sourceDiskId: src.id } });
      } else if (!ctx.signal.aborted) {
        await store.disks.setStatus(copy.id, 'failed');
      }
      throw e;
    }
    await store.disks.setStatus(copy.id, 'ready');
    await ctx.progress(100);
    await store.event({ kind: 'disk.ready', subjectKind: 'disk', subjectId: copy.id, correlationId: ctx.correlationId,
      message: `disk ${copy.name}: a copy of disk ${src.name}`, details: { sourceDiskId: src.id, imageId: copy.imageId, volumeId: copy.volumeId, storageDomainId: copy.storageDomainId } });
  };
}

export function diskMoveJob(deps: StorageDeps) {
  return async (ctx: JobContext): Promise<void> => {
    const { store, runtime } = deps;
    const p = ctx.job.params as unknown as DiskMoveParams;
    const disk = await store.disks.get(ctx.job.targetId);
    if (disk.storageDomainId === p.storageDomainId) return; // an earlier run got to the end
    const user = await runningUser(store, disk);
    // Checked again when the job runs (a start may have come after the route's check); once the task was sent the agent checks.
    if (user && ctx.memo('moveTask') === undefined) {
      const e = new DiskInUseError(disk, user, 'moved');
      throw new JobFailure('DiskInUse', e.message, e.details);
    }
    const call = { correlationId: ctx.correlationId };
    const progress = progressFollower(ctx);
    try {
      await runSpmTask(deps, ctx, {
        clusterId: await clusterOf(deps, disk.storageDomainId), verb: 'Image.move', memoKey: 'moveTask',
        params: { storagedomainID: p.fromDomainId, imageID: disk.imageId, dstSdUUID: p.storageDomainId, ...(p.bandwidthMiBs !== undefined && { bandwidth: p.bandwidthMiBs }) },
        // Moved: the leaf is LEGAL on the target and the source image is gone.
        done: async (spm) => {
          if (!(await isLegal(deps, ctx, spm, { storageDomainId: p.storageDomainId, imageId: disk.imageId, volumeId: disk.volumeId }))) return false;
          const r = await runtime.links.call(spm, 'StorageDomain.getVolumes', { storagedomainID: p.fromDomainId, imageID: disk.imageId }, call);
          return r.volumes.length === 0;
        },
        onStatus: (st) => (st.progress === undefined ? undefined : progress(st.progress)),
        stop: ctx.cancelSignal,
      });
    } catch (e) {
      if (isCancel(e)) {
        await store.event({ kind: 'disk.move-cancelled', subjectKind: 'disk', subjectId: disk.id, correlationId: ctx.correlationId,
          message: `move of disk ${disk.name} cancelled: it stays on its domain`, details: { storageDomainId: disk.storageDomainId } });
      }
      throw busyFailure(e, disk) ?? e;
    }
    await store.disks.relocate(disk.id, p.storageDomainId);
    await ctx.progress(100);
    await store.event({ kind: 'disk.moved', subjectKind: 'disk', subjectId: disk.id, correlationId: ctx.correlationId,
      message: `disk ${disk.name} moved to domain ${p.storageDomainId}`, details: { from: p.fromDomainId, to: p.storageDomainId, imageId: disk.imageId } });
  };
}

/** The agent's 203 (a VM runs on the disk there: the call's answer, or the task's end after the copy) as a clear failure. */
function busyFailure(e: unknown, disk: Disk): JobFailure | undefined {
  const code = e instanceof JobFailure ? e.details['agentCode'] : agentCode(e);
  if (code !== ERRORS.volumeIsBusy.code) return undefined;
  const text = e instanceof Error ? e.message : String(e);
  return new JobFailure('DiskInUse', `disk ${disk.name} is used by a VM running on the SPM host: a disk under a running VM is not moved `
    + `(live storage migration is not supported); stop the VM first. Agent: ${text}`, { reason: 'DiskInUse', diskId: disk.id, agentCode: code }, { cause: e });
}
