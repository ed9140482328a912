// The SPM tasks templates and clones are made of, each run through runSpmTask (its task id
// remembered with the job under its own key, so a resumed job follows the same task) and
// checked on storage first (a volume that is LEGAL is there already).
import type { JobContext } from '../jobs/executor.js';
import { JobFailure } from '../jobs/job-failure.js';
import { ERRORS } from '../../api/errors.js';
import { agentCode } from '../storage/agent-answer.js';
import { runSpmTask } from '../storage/spm-task.js';
import type { StorageDeps } from '../storage/storage-deps.js';

const NOT_THERE = new Set<number>([ERRORS.volumeDoesNotExist.code, ERRORS.imageDoesNotExist.code]);

export interface VolumeRef { storageDomainId: string; imageId: string; volumeId: string }

export async function isLegal(deps: StorageDeps, ctx: JobContext, spm: string, v: VolumeRef): Promise<boolean> {
  try {
    const info = await deps.runtime.links.call(spm, 'Volume.getInfo', { storagedomainID: v.storageDomainId, imageID: v.imageId, volumeID: v.volumeId },
      { correlationId: ctx.correlationId });
    return info.legality === 'LEGAL';
  } catch (e) {
    if (NOT_THERE.has(agentCode(e) ?? 0)) return false;
    throw e;
  }
}

/**
 * Volume.copy: the chain ending at `src` collapsed into the new volume `dst` (SHARED: a template
 * volume; LEAF: a full clone or a disk copy). COW sparse unless `format` says otherwise; `stop`
 * stops and rolls back the task (a cancelled job).
 */
export async function copyVolume(deps: StorageDeps, ctx: JobContext, o: {
  clusterId: string; src: VolumeRef; dst: VolumeRef; volType: 'SHARED' | 'LEAF'; memoKey: string; description: string;
  onProgress(percent: number): Promise<void>;
  format?: { volFormat: 'COW' | 'RAW'; preallocate: 'SPARSE' | 'PREALLOCATED' };
  stop?: AbortSignal;
  /** MiB/s for the copy (Volume.copy bandwidth); none: no limit */
  bandwidthMiBs?: number;
}): Promise<void> {
  await runSpmTask(deps, ctx, {
    clusterId: o.clusterId, verb: 'Volume.copy', memoKey: o.memoKey,
    params: {
      storagedomainID: o.src.storageDomainId, imageID: o.src.imageId, volumeID: o.src.volumeId,
      dstSdUUID: o.dst.storageDomainId, dstImgUUID: o.dst.imageId, dstVolUUID: o.dst.volumeId,
      volType: o.volType, ...(o.format ?? { volFormat: 'COW', preallocate: 'SPARSE' }), description: o.description,
      ...(o.bandwidthMiBs !== undefined && { bandwidth: o.bandwidthMiBs }),
    },
    done: (spm) => isLegal(deps, ctx, spm, o.dst),
    onStatus: (st) => (st.progress === undefined ? undefined : o.onProgress(st.progress)),
    ...(o.stop && { stop: o.stop }),
  });
}

/** Volume.create with srcImgUUID: a COW volume in a new image whose backing file is the template's SHARED volume. */
export async function thinCloneVolume(deps: StorageDeps, ctx: JobContext, o: {
  clusterId: string; template: VolumeRef; dst: VolumeRef; sizeBytes: number; memoKey: string; description: string;
}): Promise<void> {
  await runSpmTask(deps, ctx, {
    clusterId: o.clusterId, verb: 'Volume.create', memoKey: o.memoKey,
    params: {
      storagedomainID: o.dst.storageDomainId, imageID: o.dst.imageId, volumeID: o.dst.volumeId, size: o.sizeBytes,
      volFormat: 'COW', preallocate: 'SPARSE', srcImgUUID: o.template.imageId, srcVolUUID: o.template.volumeId, description: o.description,
    },
    done: (spm) => isLegal(deps, ctx, spm, o.dst),
  });
}

/** Image.delete; an image that is not there (never made, or deleted by an earlier run) counts as deleted. */
export async function deleteImage(deps: StorageDeps, ctx: JobContext, o: { clusterId: string; image: Omit<VolumeRef, 'volumeId'>; memoKey: string }): Promise<void> {
  try {
    await runSpmTask(deps, ctx, {
      clusterId: o.clusterId, verb: 'Image.delete', memoKey: o.memoKey,
      params: { storagedomainID: o.image.storageDomainId, imageID: o.image.imageId },
      done: async (spm) => {
        const r = await deps.runtime.links.call(spm, 'StorageDomain.getVolumes', { storagedomainID: o.image.storageDomainId, imageID: o.image.imageId },
          { correlationId: ctx.correlationId });
        return r.volumes.length === 0;
      },
    });
  } catch (e) {
    const code = e instanceof JobFailure ? e.details['agentCode'] : agentCode(e);
    if (code !== ERRORS.imageDoesNotExist.code) throw e;
  }
}
