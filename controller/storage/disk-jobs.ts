// disk.create and disk.delete: a disk is one image with one volume on a storage domain, made
// and removed by the cluster's SPM as tasks (runSpmTask follows each to its end, across a
// controller restart or an SPM failover). thin = a COW (qcow2) sparse volume, preallocated =
// RAW preallocated, as VDSM makes them. The ids are the store's (imageId, volumeId), so what
// is on storage can always be checked against the record.
import type { JobContext } from '../jobs/executor.js';
import { JobFailure } from '../jobs/job-failure.js';
import type { Disk } from '../model/storage.js';
import { ERRORS } from '../../api/errors.js';
import { RpcCallError } from '../../api/client/errors.js';
import { agentCode } from './agent-answer.js';
import { runSpmTask } from './spm-task.js';
import type { StorageDeps } from './storage-deps.js';
import { sleepOrAbort } from './sleep.js';

const NOT_THERE = new Set<number>([ERRORS.volumeDoesNotExist.code, ERRORS.imageDoesNotExist.code]);

async function clusterOf(deps: StorageDeps, disk: Disk): Promise<string> {
  return (await deps.store.storageDomains.get(disk.storageDomainId)).clusterId;
}

export function diskCreateJob(deps: StorageDeps) {
  return async (ctx: JobContext): Promise<void> => {
    const { store, runtime } = deps;
    const disk = await store.disks.get(ctx.job.targetId);
    if (disk.status === 'ready') return; // an earlier run got to the end
    if (disk.status !== 'pending') throw new JobFailure('Conflict', `disk ${disk.name} is ${disk.status}: not created`, { status: disk.status });
    const clusterId = await clusterOf(deps, disk);
    const thin = disk.provisioning === 'thin';
    const call = { correlationId: ctx.correlationId };
    await ctx.progress(10);
    try {
      const out = await runSpmTask(deps, ctx, {
        clusterId, verb: 'Volume.create',
        params: {
          storagedomainID: disk.storageDomainId, imageID: disk.imageId, volumeID: disk.volumeId, size: disk.sizeBytes,
          volFormat: thin ? 'COW' : 'RAW', preallocate: thin ? 'SPARSE' : 'PREALLOCATED', description: disk.name,
        },
        // Made whole: a create that did not finish leaves an ILLEGAL volume (or none), never a LEGAL one.
        done: async (spm) => {
          try {
            const v = await runtime.links.call(spm, 'Volume.getInfo', { storagedomainID: disk.storageDomainId, imageID: disk.imageId, volumeID: disk.volumeId }, call);
            return v.legality === 'LEGAL';
          } catch (e) {
            if (NOT_THERE.has(agentCode(e) ?? 0)) return false;
            throw e;
          }
        },
      });
      ctx.log('info', 'volume created', { disk: disk.id, volume: disk.volumeId, ...(out !== 'done' && { taskID: out.id, phasesMs: out.phasesMs }) });
    } catch (e) {
      if (!ctx.signal.aborted) await store.disks.setStatus(disk.id, 'failed');
      throw e;
    }
    if ((await store.disks.get(disk.id)).status === 'pending') await store.disks.setStatus(disk.id, 'ready');
    await store.event({ kind: 'disk.ready', subjectKind: 'disk', subjectId: disk.id, correlationId: ctx.correlationId,
      message: `disk ${disk.name}: ${thin ? 'COW sparse' : 'RAW preallocated'} volume ${disk.volumeId} created`, details: { imageId: disk.imageId, volumeId: disk.volumeId } });
  };
}

export function diskDeleteJob(deps: StorageDeps) {
  return async (ctx: JobContext): Promise<void> => {
    const { store, runtime } = deps;
    const disk = await store.disks.find(ctx.job.targetId);
    if (disk === undefined) return; // an earlier run removed it
    await ctx.step('wait for its create job', () => createJobEnded(deps, ctx, disk.id));
    const clusterId = await clusterOf(deps, disk);
    try {
      await runSpmTask(deps, ctx, {
        clusterId, verb: 'Image.delete',
        params: { storagedomainID: disk.storageDomainId, imageID: disk.imageId },
        done: async (spm) => {
          const r = await runtime.links.call(spm, 'StorageDomain.getVolumes', { storagedomainID: disk.storageDomainId, imageID: disk.imageId },
            { correlationId: ctx.correlationId });
          return r.volumes.length === 0;
        },
      });
    } catch (e) {
      // An image that is not there (a create that failed, an earlier delete) is deleted.
      const code = e instanceof JobFailure ? e.details['agentCode'] : e instanceof RpcCallError ? e.code : undefined;
      if (code !== ERRORS.imageDoesNotExist.code) {
        if (!ctx.signal.aborted) await store.disks.setStatus(disk.id, 'failed');
        throw e;
      }
    }
    await store.disks.delete(disk.id);
    await store.event({ kind: 'disk.deleted', subjectKind: 'disk', subjectId: disk.id, correlationId: ctx.correlationId,
      message: `disk ${disk.name}: image ${disk.imageId} deleted`, details: { imageId: disk.imageId } });
  };
}

/** A delete waits for the disk's create job to end: the two must not run on one image at once. */
async function createJobEnded(deps: StorageDeps, ctx: JobContext, diskId: string): Promise<void> {
  const until = Date.now() + deps.settings.spmTaskTimeoutMs;
  while (await deps.store.jobs.activeFor(diskId, ['disk.create'])) {
    if (Date.now() > until) throw new JobFailure('Conflict', 'the disk\'s create job did not end in time', { diskId });
    await sleepOrAbort(1_000, ctx.signal);
  }
}
